import Autodiff
import Kernels
import TestSupport
import Testing

@Suite("Every differentiable tensor operation passes a finite-difference check")
struct OperationGradientTests {
    @Test func pointwise() {
        var sample = Sample(seed: 1)
        let x = sample.tensor([2, 3, 4], margin: 0.05)
        let positive = sample.positive([2, 3, 4])
        checkGradients([x]) { $0[0].relu() }
        checkGradients([x]) { $0[0].leakyRelu(slope: 0.2) }
        checkGradients([x]) { $0[0].tanh() }
        checkGradients([positive]) { $0[0].sqrt() }
        checkGradients([x]) { $0[0].exp() }
        checkGradients([positive]) { $0[0].log() }
        checkGradients([x]) { $0[0].squared() }
        checkGradients([x]) { $0[0].abs() }
        checkGradients([x]) { $0[0].affine(scale: -1.5, shift: 0.3) }
        checkGradients([x]) { -$0[0] * 2 + 1 }
        checkGradients([x]) { (3 - $0[0]) / 4 - 2 }
        checkGradients([x]) { $0[0].affine(scale: 1, shift: 1).relu() + $0[0].affine(scale: -1, shift: 1).relu() }
    }

    @Test(arguments: [
        ([2, 3, 4], [3, 1]), ([2, 1, 4], [2, 3, 1]), ([3], [2, 3]), ([2, 3], [2, 3]), ([], [2, 2]),
    ])
    func broadcastingArithmetic(_ shapes: ([Int], [Int])) {
        var sample = Sample(seed: 2)
        let a = sample.tensor(shapes.0)
        let b = sample.tensor(shapes.1)
        let denominator = sample.positive(shapes.1)
        checkGradients([a, b]) { $0[0] + $0[1] }
        checkGradients([a, b]) { $0[0] - $0[1] }
        checkGradients([a, b]) { $0[0] * $0[1] }
        checkGradients([a, denominator]) { $0[0] / $0[1] }
    }

    @Test func reductions() {
        var sample = Sample(seed: 3)
        let x = sample.tensor([2, 3, 4])
        checkGradients([x]) { $0[0].sum(alongAxes: [0, 2]) }
        checkGradients([x]) { $0[0].sum(alongAxes: [1], keepingDimensions: true) }
        checkGradients([x]) { $0[0].mean(alongAxes: [-1]) }
        checkGradients([x]) { $0[0].sum() }
        checkGradients([x]) { $0[0].mean() }
        checkGradients([sample.tensor([3, 1])]) { $0[0].expanded(to: [2, 3, 4]) }
    }

    @Test func shapeOperations() {
        var sample = Sample(seed: 4)
        let x = sample.tensor([2, 3, 4])
        checkGradients([x]) { $0[0].reshaped(to: [4, -1]) * $0[0].reshaped(to: [4, 6]) }
        checkGradients([x]) { $0[0].flattened() }
        checkGradients([x]) { $0[0].permuted([2, 0, 1]) }
        checkGradients([x]) { $0[0].transposed() }
        checkGradients([x]) { $0[0].sliced(alongAxis: 1, 1..<3) }
        checkGradients([x]) { $0[0].sliced(alongAxis: -1, 0..<1) }
        checkGradients([x, sample.tensor([2, 1, 4])]) { Tensor.concatenated([$0[1], $0[0], $0[1]], alongAxis: 1) }
    }

    @Test(arguments: [(1, 1, 0, true), (2, 1, 0, false), (2, 1, 1, true), (1, 0, 0, true)])
    func convolutions(_ setting: (Int, Int, Int, Bool)) {
        let (stride, padding, outputPadding, withBias) = setting
        var sample = Sample(seed: 5)
        let x = sample.tensor([2, 3, 5, 7])
        let weight = sample.tensor([4, 3, 3, 3])
        let bias = sample.tensor([4])
        if withBias {
            checkGradients([x, weight, bias]) {
                Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding)
            }
        } else {
            checkGradients([x, weight]) { Tensor.conv2d($0[0], weight: $0[1], stride: stride, padding: padding) }
        }
        // A 1x3 kernel padding only its columns, a 3x1 kernel padding only its rows (InceptionV3).
        checkGradients([x, sample.tensor([2, 3, 1, 3])]) {
            Tensor.conv2d($0[0], weight: $0[1], stride: stride, padding: (0, 1))
        }
        checkGradients([x, sample.tensor([2, 3, 3, 1])]) {
            Tensor.conv2d($0[0], weight: $0[1], stride: stride, padding: (1, 0))
        }
        let small = sample.tensor([2, 3, 3, 4])
        let transposedWeight = sample.tensor([3, 2, 3, 3])
        let transposedBias = sample.tensor([2])
        if withBias {
            checkGradients([small, transposedWeight, transposedBias]) {
                Tensor.convTranspose2d(
                    $0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding, outputPadding: outputPadding)
            }
        } else {
            checkGradients([small, transposedWeight]) {
                Tensor.convTranspose2d(
                    $0[0], weight: $0[1], stride: stride, padding: padding, outputPadding: outputPadding)
            }
        }
    }

    @Test func batchNormalization() {
        var sample = Sample(seed: 6)
        let x = sample.tensor([3, 2, 2, 3], scale: 2)
        let scale = sample.positive([2])
        let shift = sample.tensor([2])
        checkGradients([x, scale, shift]) {
            Tensor.batchNormTraining($0[0], scale: $0[1], shift: $0[2], epsilon: 1e-3).output
        }
        checkGradients([x, shift]) { Tensor.batchNormTraining($0[0], scale: nil, shift: $0[1], epsilon: 1e-3).output }
        checkGradients([x]) { Tensor.batchNormTraining($0[0], scale: nil, shift: nil, epsilon: 1e-3).output }
        checkGradients([sample.tensor([5, 3])]) {
            Tensor.batchNormTraining($0[0], scale: nil, shift: nil, epsilon: 1e-3).output
        }
        // On one rank the synchronised op's combined statistics and backward correction are exact
        // no-ops; several ranks are compared with the fused kernel in SynchronizedBatchNormTests.
        checkGradients([x, scale, shift]) {
            Tensor.synchronizedBatchNormTraining($0[0], scale: $0[1], shift: $0[2], epsilon: 1e-3, group: OneRank())
                .output
        }
        checkGradients([sample.tensor([5, 3])]) {
            Tensor.synchronizedBatchNormTraining($0[0], scale: nil, shift: nil, epsilon: 1e-3, group: OneRank()).output
        }
        let mean = sample.tensor([2])
        let variance = sample.positive([2])
        checkGradients([x, scale, shift]) {
            Tensor.batchNormInference($0[0], mean: mean, variance: variance, scale: $0[1], shift: $0[2], epsilon: 1e-3)
        }
        checkGradients([x, shift]) {
            Tensor.batchNormInference($0[0], mean: mean, variance: variance, scale: nil, shift: $0[1], epsilon: 1e-3)
        }
    }

    @Test func products() {
        var sample = Sample(seed: 7)
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = sample.tensor(transposeA ? [4, 3] : [3, 4])
            let b = sample.tensor(transposeB ? [5, 4] : [4, 5])
            checkGradients([a, b]) { Tensor.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB) }
            let batchedA = sample.tensor(transposeA ? [2, 4, 3] : [2, 3, 4])
            let batchedB = sample.tensor(transposeB ? [2, 5, 4] : [2, 4, 5])
            checkGradients([batchedA, batchedB]) {
                Tensor.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)
            }
            checkGradients([batchedA, b]) {
                Tensor.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)
            }
        }
        checkGradients([sample.tensor([3, 4]), sample.tensor([5, 4]), sample.tensor([5])]) {
            Tensor.linear($0[0], weight: $0[1], bias: $0[2])
        }
    }

    @Test func fusedAttentionEqualsThePlainComposition() {
        var sample = Sample(seed: 12)
        let q = sample.tensor([2, 3, 7])
        let k = sample.tensor([2, 3, 5])
        let v = sample.tensor([2, 4, 5])
        checkGradients([q, k, v]) { Tensor.attention(queries: $0[0], keys: $0[1], values: $0[2]) }
        for backend in backendsUnderTest {
            withBackend(backend) {
                let leaves = [q, k, v].map { $0.trackingGradients() }
                var random = RandomGenerator(seed: 3)
                let weights = Tensor.randomUniform([2, 4, 7], low: -1, high: 1, generator: &random)
                let fused = valueAndGradients(
                    of: {
                        (Tensor.attention(queries: leaves[0], keys: leaves[1], values: leaves[2]) * weights).sum()
                    }, wrt: leaves)
                let plain = valueAndGradients(
                    of: {
                        let map = Tensor.matmul(leaves[0], leaves[1], transposeA: true).softmax()
                        return (Tensor.matmul(leaves[2], map, transposeB: true) * weights).sum()
                    }, wrt: leaves)
                #expect(abs(fused.value.scalar - plain.value.scalar) < 1e-5)
                for (a, b) in zip(fused.gradients, plain.gradients) {
                    #expect(
                        zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) < 1e-5 },
                        "\(backend.name): gradient of shape \(a.shape)")
                }
            }
        }
    }

    @Test func softmaxAndPooling() {
        var sample = Sample(seed: 8)
        checkGradients([sample.tensor([2, 3, 5], scale: 2)]) { $0[0].softmax() }
        // Distinct, well separated values so that no window holds a near-tie.
        var generator = RandomGenerator(seed: 9)
        let order = generator.uniform(count: 2 * 3 * 4 * 6).enumerated().sorted { $0.element < $1.element }.map(
            \.offset)
        var values = [Float](repeating: 0, count: order.count)
        for (rank, index) in order.enumerated() { values[index] = Float(rank) * 0.05 }
        let x = Tensor(shape: [2, 3, 4, 6], scalars: values)
        checkGradients([x]) { $0[0].maxPool2d(window: 2) }
        checkGradients([x]) { $0[0].maxPool2d(window: 3, stride: 2) }
        checkGradients([x]) { $0[0].maxPool2d(window: 3, stride: 1, padding: 1) }
        checkGradients([x]) { $0[0].avgPool2d(window: 3, stride: 1, padding: 1) }
        checkGradients([x]) { $0[0].avgPool2d(window: 2, stride: 2) }
    }

    /// The fused op against W / σ composed of primitive ops, on a weight of three (out 4, inner 5)
    /// blocks (a transposed convolution's layout), with and without the power iteration.
    @Test func fusedSpectralNormEqualsThePlainComposition() {
        var sample = Sample(seed: 13)
        let weight = sample.tensor([3, 4, 5])
        let u = sample.tensor([4]).l2Normalized()
        let v = sample.tensor([15]).l2Normalized()
        checkGradients([weight]) {
            Tensor.spectralNormalized($0[0], blocks: 3, u: u, v: v, powerIteration: false, epsilon: 1e-12).weight
        }
        for backend in backendsUnderTest {
            withBackend(backend) {
                for powerIteration in [false, true] {
                    let leaf = weight.trackingGradients()
                    var random = RandomGenerator(seed: 4)
                    let weights = Tensor.randomUniform([3, 4, 5], low: -1, high: 1, generator: &random)
                    var vectors = (u: u, v: v)
                    var sigma: Float = 0
                    let fused = valueAndGradients(
                        of: {
                            let result = Tensor.spectralNormalized(
                                leaf, blocks: 3, u: u, v: v, powerIteration: powerIteration, epsilon: 1e-12)
                            (vectors, sigma) = ((result.u, result.v), result.sigma)
                            return (result.weight * weights).sum()
                        }, wrt: [leaf])
                    // The (4, 15) matrix puts the blocks side by side; u and v are constants in σ.
                    let matrix = leaf.permuted([1, 0, 2]).reshaped(to: [4, 15])
                    let expectedV =
                        powerIteration
                        ? Tensor.matmul(matrix.detached(), u.reshaped(to: [4, 1]), transposeA: true).reshaped(to: [15])
                            .l2Normalized() : v
                    let expectedU =
                        powerIteration
                        ? Tensor.matmul(matrix.detached(), expectedV.reshaped(to: [15, 1])).reshaped(to: [4])
                            .l2Normalized() : u
                    let plain = valueAndGradients(
                        of: {
                            let product = Tensor.matmul(matrix, expectedV.reshaped(to: [15, 1])).reshaped(to: [4])
                            return (leaf / Tensor.dot(expectedU, product) * weights).sum()
                        }, wrt: [leaf])
                    let what = "\(backend.name), power iteration \(powerIteration)"
                    // Relative: without the power iteration σ = uᵀWv of random vectors may be small.
                    let scale = max(1, abs(plain.value.scalar))
                    let gradientScale = max(1, plain.gradients[0].scalars.map(abs).max()!)
                    #expect(
                        abs(fused.value.scalar - plain.value.scalar) < 1e-5 * scale,
                        "\(what): value \(fused.value.scalar) vs \(plain.value.scalar)")
                    #expect(
                        zip(fused.gradients[0].scalars, plain.gradients[0].scalars).allSatisfy {
                            abs($0 - $1) < 1e-5 * gradientScale
                        },
                        "\(what): gradient")
                    #expect(zip(vectors.u.scalars, expectedU.scalars).allSatisfy { abs($0 - $1) < 1e-6 }, "\(what): u")
                    #expect(zip(vectors.v.scalars, expectedV.scalars).allSatisfy { abs($0 - $1) < 1e-6 }, "\(what): v")
                    #expect(sigma > 0)
                }
            }
        }
    }

    @Test func spectralNormHelpers() {
        var sample = Sample(seed: 10)
        let a = sample.tensor([3, 4])
        let b = sample.tensor([3, 4])
        checkGradients([a]) { $0[0].l2Normalized() }
        checkGradients([a, b]) { Tensor.dot($0[0], $0[1]) }
    }
}

/// A process group of one rank: collectives return their input.
final class OneRank: ProcessGroup {
    let rank = 0
    let size = 1
    func sum(_ values: UnsafeMutableBufferPointer<Float>) {}
    func extremes(_ values: [UInt32]) -> (minimum: [UInt32], maximum: [UInt32]) { (values, values) }
    func gather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {}
}
