import CKernels
import Kernels
import Testing

/// The bf16 paths: rounding, and every bf16 kernel of oneDNN against the reference backend's bf16 mode.
///
/// Tolerances. Both backends round the same operands to bf16 the same way (to nearest, ties to even),
/// and a Float32 product of two bf16 values is exact, so they may differ only by the order of their
/// Float32 sums: within `sameRounding` = 1e-4 of the output's scale, as the Float32 parity tests. A
/// backend that skipped a rounding would be off by up to u·Σ|a·b| (u = 2⁻⁹, bf16's unit roundoff),
/// about 1e-3 of the scale on these random operands: each test also checks that the bf16 result is
/// that far from the Float32 one, so a test cannot pass on a path that silently ran in Float32.
///
/// The attention rounds operands it computes itself (P and dS) from a vectorised exp that rounds its
/// argument differently from the reference's expf(x − max) (both are within a few Float32 ulps of
/// the argument from the exact softmax): the few elements that lie within that of a bf16 rounding
/// boundary round the other way, each moving one product by 2⁻⁸ of itself. Its tolerance,
/// `boundaryFlips` = 4e-4, stays below half of the measured bf16-to-Float32 distance.
@Suite("bf16 kernels match the reference backend's bf16 mode")
struct BF16ParityTests {
    let reference = BackendRegistry.reference
    static let sameRounding: Float = 1e-4
    static let boundaryFlips: Float = 4e-4

    func random(_ count: Int, seed: UInt64, scale: Float = 1) -> Storage {
        var generator = TestRandom(seed: seed)
        return Storage(generator.floats(count).map { $0 * scale })
    }

    /// The largest difference over the largest magnitude of `expected` (at least 1).
    func scaledDifference(_ actual: Storage, _ expected: Storage) -> Float {
        let (a, e) = (actual.elements, expected.elements)
        let scale = max(1, e.map { Swift.abs($0) }.max() ?? 0)
        return (zip(a, e).map { Swift.abs($0 - $1) }.max() ?? 0) / scale
    }

    /// `bf16` within `sameRounding` of the reference's bf16 result, and (when the operands are
    /// large enough to tell) clearly apart from the Float32 result.
    func expectBF16(
        _ bf16: Storage?, reference expected: Storage?, fp32: Storage?, _ what: String, distinguishable: Bool = true,
        tolerance: Float = sameRounding
    ) {
        guard let bf16, let expected, let fp32 else {
            #expect(bf16 == nil && expected == nil, "\(what): one backend returned nothing")
            return
        }
        let difference = scaledDifference(bf16, expected)
        #expect(difference <= tolerance, "\(what): bf16 differs from the reference's bf16 by \(difference)")
        if distinguishable {
            let fromFloat32 = scaledDifference(bf16, fp32)
            #expect(
                fromFloat32 > 2 * max(tolerance, 2 * Self.sameRounding) && fromFloat32 < 8 * BFloat16.unitRoundoff,
                "\(what): bf16 is \(fromFloat32) from Float32; a bf16 product should be about 1e-3 away")
        }
    }

    /// A bf16 result (an activation: docs/model.md §9): bf16 values, each the reference's bf16-mode
    /// result rounded, but for the few that lie within a Float32 sum-order difference of a rounding
    /// boundary (then the neighbouring bf16 value). With `distinguishable`, rounding the Float32
    /// result instead (a path that skipped the operands' rounding) must miss far more often.
    func expectRoundedBF16(
        _ actual: Storage, reference expected: Storage, fp32: Storage, _ what: String, distinguishable: Bool = true
    ) {
        #expect(actual.precision == .bf16, "\(what): the result is not bf16")
        let values = actual.elements
        #expect(values.allSatisfy { BFloat16.round($0) == $0 }, "\(what): values that are not bf16")
        let (exact, rounded) = (expected.elements, reference.roundedToBF16(expected).elements)
        let scale = max(1, exact.map { Swift.abs($0) }.max() ?? 0)
        let misses = zip(values, rounded).filter { $0 != $1 }.count
        let far = zip(values, exact).filter { a, e in
            Swift.abs(a - e) > 2 * BFloat16.unitRoundoff * Swift.abs(e) + Self.sameRounding * scale
        }.count
        #expect(far == 0, "\(what): \(far) values more than a bf16 step from the reference's")
        #expect(misses * 50 <= values.count, "\(what): \(misses) of \(values.count) round differently")
        if distinguishable {
            let unrounded = reference.roundedToBF16(fp32).elements
            let skipped = zip(unrounded, rounded).filter { $0 != $1 }.count
            #expect(skipped * 10 > values.count, "\(what): only \(skipped) values tell a skipped rounding apart")
        }
    }

    var onednn: OneDNNBackend? { OneDNNBackend.shared }

    /// oneDNN's bf16 convolutions and products exist only on CPUs with bf16 instructions.
    static let nativeBF16: ConditionTrait = .enabled(
        if: OneDNNBackend.shared?.runsBF16Natively == true, "oneDNN has bf16 kernels only with AVX512_BF16 or AMX")

    @Test func roundingToNearestEven() {
        let one = Float(1)
        let half = Float(bitPattern: 0x0000_8000)  // the bit below bf16's last
        #expect(BFloat16.round(one) == one)
        #expect(BFloat16.round(Float(bitPattern: one.bitPattern | 0x8000)) == one, "a tie rounds to the even 1.0")
        #expect(
            BFloat16.round(Float(bitPattern: 0x3F81_8000)) == Float(bitPattern: 0x3F82_0000),
            "a tie above an odd last bit rounds up")
        #expect(BFloat16.round(Float(bitPattern: 0x3F80_8001)) == Float(bitPattern: 0x3F81_0000))
        #expect(BFloat16.round(-.greatestFiniteMagnitude) == -.infinity, "beyond the largest bf16")
        #expect(BFloat16.round(.infinity) == .infinity)
        #expect(BFloat16.round(.nan).isNaN)
        #expect(BFloat16.round(half) == 0, "the smallest subnormals tie to zero")
        #expect(Swift.abs(BFloat16.round(0.1) - 0.1) <= 0.1 * BFloat16.unitRoundoff)
    }

    /// The C rounding that the oneDNN backend's own kernels use agrees with the Swift one bit for bit.
    @Test func cRoundingMatchesSwift() {
        var generator = TestRandom(seed: 7)
        var values = (0..<4096).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
        values += [0, -0, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        var rounded = values
        sagan_round_bf16(&rounded, rounded.count)
        for (value, result) in zip(values, rounded) {
            let expected = BFloat16.round(value)
            #expect(
                expected.isNaN ? result.isNaN : expected.bitPattern == result.bitPattern,
                "\(value) (0x\(String(value.bitPattern, radix: 16))): C \(result), Swift \(expected)")
        }
    }

    /// The blog128 discriminator's 4x4 stride-2 layers and attention projections at batch 2,
    /// awkward small shapes, the generator's RGB layer (16 → 3, 3x3), which runs on our direct kernels, and
    /// outputs of at most 16 positions (256 → 512 at 8x8, 3x4 with a 3x3 kernel, 3x2 with a 2x2 one), whose
    /// weight gradients are one matrix product over patch rows.
    static let convolutions: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (1, 3, 4, 5, 7, 3, 1, 1), (3, 4, 2, 8, 8, 4, 2, 1), (2, 16, 32, 8, 8, 4, 2, 1), (2, 3, 32, 64, 64, 4, 2, 1),
        (2, 32, 64, 32, 32, 4, 2, 1), (2, 256, 512, 8, 8, 4, 2, 1), (2, 64, 8, 32, 32, 1, 1, 0),
        (2, 16, 3, 32, 32, 3, 1, 1), (3, 5, 6, 3, 4, 3, 1, 1), (2, 7, 9, 6, 5, 2, 2, 0),
    ]

    @Test(nativeBF16, arguments: convolutions)
    func convolution(_ shape: (Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let onednn = try #require(onednn)
        let (n, cin, cout, h, w, k, stride, padding) = shape
        let fp32 = try Conv2DGeometry(
            batch: n, inChannels: cin, outChannels: cout, inHeight: h, inWidth: w,
            kernelHeight: k, kernelWidth: k, stride: stride, padding: padding)
        var g = fp32
        g.precision = .bf16
        let x = random(ShapeMath.count(g.inputShape), seed: 1)
        let weight = random(ShapeMath.count(g.weightShape), seed: 2)
        let bias = random(cout, seed: 3)
        let dy = random(ShapeMath.count(g.outputShape), seed: 4)
        // Sums of a handful of products cannot tell bf16 from Float32 apart reliably.
        let telling = cin * k * k >= 48
        expectRoundedBF16(
            onednn.conv2dForward(g, input: x, weight: weight, bias: bias),
            reference: reference.conv2dForward(g, input: x, weight: weight, bias: bias),
            fp32: reference.conv2dForward(fp32, input: x, weight: weight, bias: bias), "conv forward \(g)",
            distinguishable: telling)
        expectRoundedBF16(
            onednn.conv2dBackwardData(g, outputGradient: dy, weight: weight),
            reference: reference.conv2dBackwardData(g, outputGradient: dy, weight: weight),
            fp32: reference.conv2dBackwardData(fp32, outputGradient: dy, weight: weight), "conv backward data \(g)",
            distinguishable: cout * k * k >= 48)
        let weights = onednn.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: true)
        let expected = reference.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: true)
        let float32 = reference.conv2dBackwardWeights(fp32, outputGradient: dy, input: x, withBias: true)
        expectBF16(
            weights.weight, reference: expected.weight, fp32: float32.weight, "conv backward weights \(g)",
            distinguishable: n * g.outHeight * g.outWidth >= 48)
        expectBF16(weights.bias, reference: expected.bias, fp32: float32.bias, "bias gradient", distinguishable: false)
    }

    @Test(nativeBF16, arguments: [(1, 1, 16, 8, 12), (3, 3, 2, 7, 5), (2, 2, 64, 96, 128), (1, 1, 64, 8192, 128)])
    func matmul(_ shape: (Int, Int, Int, Int, Int)) throws {
        let onednn = try #require(onednn)
        let (batchA, batchB, m, n, k) = shape
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let fp32 = try MatmulGeometry(
                batchA: batchA, batchB: batchB, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)
            var g = fp32
            g.precision = .bf16
            let a = random(batchA * m * k, seed: 16)
            let b = random(batchB * k * n, seed: 17)
            expectBF16(
                onednn.matmul(g, a, b), reference: reference.matmul(g, a, b), fp32: reference.matmul(fp32, a, b),
                "matmul \(shape) transposes \(transposeA) \(transposeB)", distinguishable: k >= 48)
        }
    }

    /// Under bf16, W/σ comes out rounded (4x4 convolution weights in oneDNN's bf16 forward layout,
    /// the rest row-major); the bf16 convolutions read it as it is, forward and (in the other bf16
    /// layout) backward data, and match the reference backend's bf16 mode reading its W/σ.
    /// (blocks, first, second): a Conv2d weight (out, in, 4, 4), a transposed convolution's (in,
    /// out, 4, 4) with one block per input channel, and a linear (out, in) weight.
    @Test(nativeBF16, arguments: [(1, 64, 32), (32, 48, 64), (0, 24, 40)])
    func spectrallyNormalisedWeights(_ shape: (Int, Int, Int)) throws {
        let onednn = try #require(onednn)
        let (blocks, first, second) = shape
        let convolution = blocks > 0
        let outputs = blocks > 1 ? second : first
        var g = try SpectralNormGeometry(
            blocks: blocks > 1 ? first : 1, outputs: outputs, inner: blocks > 1 ? 16 : second * (convolution ? 16 : 1),
            epsilon: 1e-12, weightShape: convolution ? [first, second, 4, 4] : [first, second])
        g.precision = .bf16
        let weight = random(g.count, seed: 44, scale: 0.05)
        let (u, v) = (random(outputs, seed: 45), random(g.rightCount, seed: 46))
        let f = onednn.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: true)
        let r = reference.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: true)
        #expect(
            (f.weight.layout != nil) == (convolution && sagan_kernels_use_avx512() != 0),
            "W/σ's layout: \(f.weight.layout as Any)")
        expectRoundedBF16(f.weight, reference: r.weight, fp32: r.weight, "W/σ \(shape)", distinguishable: false)
        guard convolution else { return }
        let fp32 = try Conv2DGeometry(
            batch: 2, inChannels: second, outChannels: first, inHeight: 8, inWidth: 8,
            kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)
        var conv = fp32
        conv.precision = .bf16
        let x = random(ShapeMath.count(conv.inputShape), seed: 47)
        let dy = random(ShapeMath.count(conv.outputShape), seed: 48)
        expectRoundedBF16(
            onednn.conv2dForward(conv, input: x, weight: f.weight, bias: nil),
            reference: reference.conv2dForward(conv, input: x, weight: r.weight, bias: nil),
            fp32: reference.conv2dForward(fp32, input: x, weight: r.weight, bias: nil), "forward with W/σ \(shape)")
        expectRoundedBF16(
            onednn.conv2dBackwardData(conv, outputGradient: dy, weight: f.weight),
            reference: reference.conv2dBackwardData(conv, outputGradient: dy, weight: r.weight),
            fp32: reference.conv2dBackwardData(fp32, outputGradient: dy, weight: r.weight),
            "backward data with W/σ \(shape)")
    }

    /// The generator's RGB layer under bf16 as training runs it: its input a bf16 activation in 16-channel
    /// blocks (which the direct kernels read as channel pairs without widening), 37x70 images so rows end
    /// mid-vector; dx leaves as a bf16 activation. (input channels, output channels, kernel, padding): the
    /// RGB layer; a partial second block with two full output pairs and a 5x5 kernel; one output channel
    /// and no padding.
    @Test(nativeBF16, arguments: [(16, 3, 3, 1), (20, 4, 5, 2), (33, 1, 3, 0)])
    func directConvolutionOnABF16Activation(_ shape: (Int, Int, Int, Int)) throws {
        let onednn = try #require(onednn)
        let (channels, outputs, kernel, padding) = shape
        var stem = try Conv2DGeometry(
            batch: 3, inChannels: 5, outChannels: channels, inHeight: 37, inWidth: 70,
            kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        stem.precision = .bf16
        let x = onednn.conv2dForward(
            stem, input: random(ShapeMath.count(stem.inputShape), seed: 50),
            weight: random(ShapeMath.count(stem.weightShape), seed: 51), bias: nil)
        #expect(x.precision == .bf16 && x.layout != nil, "the stem should hand over a blocked bf16 activation")
        let fp32 = try Conv2DGeometry(
            batch: 3, inChannels: channels, outChannels: outputs, inHeight: 37, inWidth: 70,
            kernelHeight: kernel, kernelWidth: kernel, stride: 1, padding: padding)
        var g = fp32
        g.precision = .bf16
        let plainX = Storage(x.elements)
        let weight = random(ShapeMath.count(g.weightShape), seed: 52)
        let bias = random(outputs, seed: 53)
        let dy = random(ShapeMath.count(g.outputShape), seed: 54)
        expectRoundedBF16(
            onednn.conv2dForward(g, input: x, weight: weight, bias: bias),
            reference: reference.conv2dForward(g, input: plainX, weight: weight, bias: bias),
            fp32: reference.conv2dForward(fp32, input: plainX, weight: weight, bias: bias), "forward")
        let weights = onednn.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: true)
        let expected = reference.conv2dBackwardWeights(g, outputGradient: dy, input: plainX, withBias: true)
        let float32 = reference.conv2dBackwardWeights(fp32, outputGradient: dy, input: plainX, withBias: true)
        expectBF16(weights.weight, reference: expected.weight, fp32: float32.weight, "backward weights")
        expectBF16(weights.bias, reference: expected.bias, fp32: float32.bias, "bias", distinguishable: false)
        let dx = onednn.conv2dBackwardData(g, outputGradient: dy, weight: weight)
        #expect(dx.layout != nil, "dx should come back in the layout the convolution reads x in")
        expectRoundedBF16(
            dx, reference: reference.conv2dBackwardData(g, outputGradient: dy, weight: weight),
            fp32: reference.conv2dBackwardData(fp32, outputGradient: dy, weight: weight), "backward data",
            distinguishable: false)
    }

    /// Weight gradients on bf16 activations in 16-channel blocks (x as the layer before writes it, dy as a
    /// backward-data convolution writes it) and on Float32 row-major operands, which they round: as a matrix
    /// product over patch rows (a 4x4 output), and with the batch split over the threads (a 32x32 output,
    /// two images per share on two threads).
    @Test(nativeBF16, arguments: [(3, 8, 32, 48), (4, 64, 16, 24)])
    func weightGradientOnBF16Activations(_ shape: (Int, Int, Int, Int)) throws {
        let onednn = try #require(onednn)
        func convolution(_ n: Int, _ cin: Int, _ cout: Int, _ size: Int, _ k: Int, _ stride: Int, _ padding: Int)
            throws -> Conv2DGeometry
        {
            var g = try Conv2DGeometry(
                batch: n, inChannels: cin, outChannels: cout, inHeight: size, inWidth: size,
                kernelHeight: k, kernelWidth: k, stride: stride, padding: padding)
            g.precision = .bf16
            return g
        }
        let (n, size, cin, cout) = shape
        let stem = try convolution(n, 5, cin, size, 3, 1, 1)
        let x = onednn.conv2dForward(
            stem, input: random(ShapeMath.count(stem.inputShape), seed: 60),
            weight: random(ShapeMath.count(stem.weightShape), seed: 61), bias: nil)
        let next = try convolution(n, cout, 40, size / 2, 1, 1, 0)
        let dy = onednn.conv2dBackwardData(
            next, outputGradient: random(ShapeMath.count(next.outputShape), seed: 62),
            weight: random(ShapeMath.count(next.weightShape), seed: 63))
        #expect(x.precision == .bf16 && dy.precision == .bf16, "both operands should be bf16 activations")
        let g = try convolution(n, cin, cout, size, 4, 2, 1)
        let (plainX, plainDY) = (Storage(x.elements), Storage(dy.elements))
        for (input, outputGradient, what) in [(x, dy, "bf16 activations"), (plainX, plainDY, "Float32 operands")] {
            let weights = onednn.conv2dBackwardWeights(g, outputGradient: outputGradient, input: input, withBias: true)
            let expected = reference.conv2dBackwardWeights(g, outputGradient: plainDY, input: plainX, withBias: true)
            // Operands that hold bf16 values already: Float32 products of them are the bf16 ones.
            expectBF16(
                weights.weight, reference: expected.weight, fp32: expected.weight, "dW from \(what)",
                distinguishable: false)
            expectBF16(weights.bias, reference: expected.bias, fp32: expected.bias, "db", distinguishable: false)
        }
    }

    /// A reduction over every axis reads a bf16 activation in its blocked layout as it is (γ's gradient
    /// in the attention), with the result of reducing its values row-major.
    @Test(nativeBF16) func fullReductionOfABlockedActivation() throws {
        let onednn = try #require(onednn)
        var g = try Conv2DGeometry(
            batch: 2, inChannels: 16, outChannels: 64, inHeight: 16, inWidth: 16, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1)
        g.precision = .bf16
        let y = onednn.conv2dForward(
            g, input: random(ShapeMath.count(g.inputShape), seed: 30),
            weight: random(ShapeMath.count(g.weightShape), seed: 31), bias: nil)
        #expect(y.precision == .bf16 && y.layout != nil, "the activation is not bf16 in a blocked layout")
        for op in [ReductionOperation.sum, .mean, .max] {
            let fast = onednn.reduce(op, y, shape: g.outputShape, outputShape: [1, 1, 1, 1]).elements[0]
            let expected = reference.reduce(op, Storage(y.elements), shape: g.outputShape, outputShape: [1, 1, 1, 1])
                .elements[0]
            #expect(Swift.abs(fast - expected) <= 1e-5 * max(1, Swift.abs(expected)), "\(op): \(fast) vs \(expected)")
        }
    }

    /// (batch, key channels, value channels, queries, keys), as in the Float32 parity tests.
    @Test(arguments: [(1, 2, 3, 5, 4), (2, 8, 64, 300, 300), (2, 8, 32, 256, 64), (5, 4, 16, 130, 70)])
    func fusedAttention(_ shape: (Int, Int, Int, Int, Int)) throws {
        let onednn = try #require(onednn)
        let (batch, ck, cv, n, m) = shape
        let fp32 = try AttentionGeometry(batch: batch, keyChannels: ck, valueChannels: cv, queries: n, keys: m)
        var g = fp32
        g.precision = .bf16
        let q = random(batch * ck * n, seed: 18, scale: 2)
        let k = random(batch * ck * m, seed: 19)
        let v = random(batch * cv * m, seed: 20)
        let dO = random(batch * cv * n, seed: 21)
        let telling = m >= 48
        expectBF16(
            onednn.attention(g, queries: q, keys: k, values: v),
            reference: reference.attention(g, queries: q, keys: k, values: v),
            fp32: reference.attention(fp32, queries: q, keys: k, values: v), "attention \(shape)",
            distinguishable: telling, tolerance: Self.boundaryFlips)
        let f = onednn.attentionBackward(g, queries: q, keys: k, values: v, outputGradient: dO)
        let r = reference.attentionBackward(g, queries: q, keys: k, values: v, outputGradient: dO)
        let r32 = reference.attentionBackward(fp32, queries: q, keys: k, values: v, outputGradient: dO)
        for (name, actual, expected, float32) in [
            ("dq", f.queries, r.queries, r32.queries), ("dk", f.keys, r.keys, r32.keys),
            ("dv", f.values, r.values, r32.values),
        ] {
            expectBF16(
                actual, reference: expected, fp32: float32, "attention \(name) \(shape)", distinguishable: telling,
                tolerance: Self.boundaryFlips)
        }
    }
}
