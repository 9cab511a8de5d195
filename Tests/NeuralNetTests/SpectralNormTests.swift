import Autodiff
import Kernels
import NeuralNet
import Testing

/// The largest singular value of an (m, n) row-major matrix, by many power iterations in Double.
func topSingularValue(_ w: [Float], rows: Int, columns: Int) -> Double {
    var v = [Double](repeating: 1 / Double(columns).squareRoot(), count: columns)
    var sigma = 0.0
    for _ in 0..<2000 {
        var u = [Double](repeating: 0, count: rows)
        for i in 0..<rows { for j in 0..<columns { u[i] += Double(w[i * columns + j]) * v[j] } }
        sigma = u.map { $0 * $0 }.reduce(0, +).squareRoot()
        u = u.map { $0 / sigma }
        var next = [Double](repeating: 0, count: columns)
        for i in 0..<rows { for j in 0..<columns { next[j] += Double(w[i * columns + j]) * u[i] } }
        let norm = next.map { $0 * $0 }.reduce(0, +).squareRoot()
        v = next.map { $0 / norm }
    }
    return sigma
}

/// Central-difference check of d(Σ r ⊙ f)/dθ at a few elements of every parameter of `module`.
func checkParameterGradients(
    _ parameters: [Parameter], step: Float = 2e-3, tolerance: Float = 2e-2, elements: Int = 5,
    sourceLocation: SourceLocation = #_sourceLocation, _ f: () -> Tensor
) {
    withBackend(BackendRegistry.reference) {
        let probe = noGrad { f() }
        var generator = RandomGenerator(seed: 77)
        let r = Tensor.randomUniform(probe.shape, low: -1, high: 1, generator: &generator)
        let (_, gradients) = valueAndGradients(of: { (f() * r).sum() }, wrt: parameters)
        for parameter in parameters {
            let analytic = gradients[parameter]!.scalars
            let original = parameter.value.scalars
            let scale = max(1, analytic.map { Swift.abs($0) }.max() ?? 0)
            for index in (0..<min(elements, original.count)).map({ $0 * original.count / min(elements, original.count) }
            ) {
                var values = original
                values[index] = original[index] + step
                parameter.assign(Tensor(shape: parameter.shape, scalars: values))
                let plus = noGrad { (f() * r).sum().scalar }
                values[index] = original[index] - step
                parameter.assign(Tensor(shape: parameter.shape, scalars: values))
                let minus = noGrad { (f() * r).sum().scalar }
                parameter.assign(Tensor(shape: parameter.shape, scalars: original))
                let numeric = (plus - minus) / (2 * step)
                #expect(
                    Swift.abs(numeric - analytic[index]) <= tolerance * scale,
                    "parameter \(parameter.shape) element \(index): analytic \(analytic[index]), numeric \(numeric)",
                    sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("Spectral normalisation")
struct SpectralNormTests {
    @Test func sigmaConvergesToTheTopSingularValue() {
        var generator = RandomGenerator(seed: 1)
        let layer = Linear(inputs: 24, outputs: 12, spectralNorm: true, generator: &generator)
        // A clear spectral gap: a strong rank-one direction plus small noise.
        let a = generator.normal(count: 12)
        let b = generator.normal(count: 24)
        let noise = generator.normal(count: 12 * 24)
        var w = [Float](repeating: 0, count: 12 * 24)
        for row in 0..<12 {
            for column in 0..<24 {
                let spike: Float = 0.5 * a[row] * b[column]
                w[row * 24 + column] = spike + 0.05 * noise[row * 24 + column]
            }
        }
        layer.weight.assign(Tensor(shape: [12, 24], scalars: w))
        let x = Tensor.zeros([1, 24])
        for _ in 0..<30 { _ = noGrad { layer(x) } }
        let expected = topSingularValue(w, rows: 12, columns: 24)
        #expect(Swift.abs(Double(layer.lastSigma!) - expected) / expected < 1e-4)
        let normalized = noGrad { layer.effectiveWeight }.scalars
        #expect(Swift.abs(topSingularValue(normalized, rows: 12, columns: 24) - 1) < 1e-3)
    }

    @Test func uMovesInTrainingAndStaysInEvaluation() {
        var generator = RandomGenerator(seed: 2)
        let layer = Conv2d(inputs: 3, outputs: 4, kernel: 3, spectralNorm: true, generator: &generator)
        #expect(layer.namedBuffers().map(\.name) == ["weight_u", "weight_v"])
        #expect(layer.namedParameters().map(\.name) == ["weight", "bias"])
        let x = Tensor.randomNormal([2, 3, 5, 5], generator: &generator)
        let initial = layer.spectralNorm!.u.value.scalars
        _ = noGrad { layer(x) }
        let afterTraining = layer.spectralNorm!.u.value.scalars
        #expect(afterTraining != initial)
        layer.isTraining = false
        let first = noGrad { layer(x) }.scalars
        let second = noGrad { layer(x) }.scalars
        #expect(layer.spectralNorm!.u.value.scalars == afterTraining)
        #expect(first == second)
    }

    @Test func transposedConvolutionUsesTheOutputChannelAxis() {
        var generator = RandomGenerator(seed: 3)
        let layer = ConvTranspose2d(
            inputs: 6, outputs: 3, kernel: 4, stride: 2, padding: 1, spectralNorm: true, generator: &generator)
        #expect(layer.spectralNorm!.u.shape == [3])
        #expect(layer.spectralNorm!.v.shape == [6 * 16])
        let x = Tensor.randomNormal([1, 6, 2, 2], generator: &generator)
        for _ in 0..<200 { _ = noGrad { layer(x) } }
        // σ of W viewed (out, in·kh·kw): permute [in, out, kh, kw] → [out, in, kh, kw] first.
        let permuted = noGrad { layer.weight.value.permuted([1, 0, 2, 3]) }.scalars
        let expected = topSingularValue(permuted, rows: 3, columns: 96)
        #expect(Swift.abs(Double(layer.lastSigma!) - expected) / expected < 1e-3)
    }

    @Test func gradientFlowsThroughSigmaWithUAndVHeldFixed() {
        var generator = RandomGenerator(seed: 4)
        let linear = Linear(inputs: 5, outputs: 4, spectralNorm: true, generator: &generator)
        let conv = Conv2d(inputs: 2, outputs: 3, kernel: 3, padding: 1, spectralNorm: true, generator: &generator)
        let transposed = ConvTranspose2d(
            inputs: 3, outputs: 2, kernel: 4, stride: 2, padding: 1, spectralNorm: true, generator: &generator)
        let x = Tensor.randomNormal([3, 5], generator: &generator)
        let image = Tensor.randomNormal([2, 2, 4, 4], generator: &generator)
        // One training forward sets u and v; evaluation mode then holds them fixed, so finite
        // differences see exactly ∂(W/σ)/∂W with u, v constant.
        for layer in [linear, conv, transposed] as [any Module] { layer.setTraining(true) }
        _ = noGrad { (linear(x), transposed(conv(image))) }
        for layer in [linear, conv, transposed] as [any Module] { layer.setTraining(false) }
        checkParameterGradients(linear.parameters) { linear(x) }
        checkParameterGradients(conv.parameters + transposed.parameters) { transposed(conv(image)) }
    }
}

@Suite("Self-attention")
struct SelfAttentionTests {
    @Test(arguments: AttentionVariant.allCases)
    func rowsAreDistributionsAndGammaStartsAtZero(variant: AttentionVariant) {
        var generator = RandomGenerator(seed: 5)
        let attention = makeSelfAttention(variant, channels: 16, generator: &generator)
        attention.recordsAttention = true
        let x = Tensor.randomNormal([2, 16, 4, 6], generator: &generator)
        let y = attention(x)
        #expect(attention.gamma.value.shape == [] && attention.gamma.value.scalar == 0)
        #expect(y.scalars == x.scalars, "with γ = 0 the block is the identity")
        let maps = attention.lastAttention!
        #expect(maps.shape == [2, 24, variant == .paper ? 24 : 6])
        let rows = maps.sum(alongAxes: [2]).scalars
        #expect(rows.allSatisfy { Swift.abs($0 - 1) < 1e-5 })
    }

    @Test(arguments: AttentionVariant.allCases)
    func onlyGammaLearnsWhileGammaIsZero(variant: AttentionVariant) {
        var generator = RandomGenerator(seed: 6)
        let attention = makeSelfAttention(variant, channels: 16, generator: &generator)
        let x = Tensor.randomNormal([2, 16, 4, 4], generator: &generator)
        let target = Tensor.randomNormal([2, 16, 4, 4], generator: &generator)
        let (_, gradients) = valueAndGradients(
            of: { (attention(x) - target).squared().mean() }, wrt: attention.parameters)
        for (name, parameter) in attention.namedParameters() {
            let magnitude = gradients[parameter]!.scalars.map { Swift.abs($0) }.max()!
            if name == "gamma" {
                #expect(magnitude > 0)
            } else {
                #expect(magnitude == 0, "\(name) got gradient \(magnitude)")
            }
        }
    }

    @Test(arguments: AttentionVariant.allCases)
    func everyParameterGetsTheRightGradientOnceGammaMoves(variant: AttentionVariant) {
        var generator = RandomGenerator(seed: 7)
        let attention = makeSelfAttention(variant, channels: 8, generator: &generator)
        attention.gamma.assign(Tensor(0.7))
        let x = Tensor.randomNormal([2, 8, 4, 4], generator: &generator)
        _ = noGrad { attention(x) }  // set the SN vectors
        attention.setTraining(false)
        checkParameterGradients(attention.parameters) { attention(x) }
    }

    @Test func parameterCountsMatchTheSpecification() {
        var generator = RandomGenerator(seed: 8)
        #expect(makeSelfAttention(.paper, channels: 64, generator: &generator).parameterCount == 5_201)
        #expect(makeSelfAttention(.biggan, channels: 256, generator: &generator).parameterCount == 81_921)
        let paper = makeSelfAttention(.paper, channels: 64, generator: &generator)
        #expect(
            paper.multiplyAccumulates(forInput: [1, 64, 32, 32]) == 1024 * 64 * 16 + 1024 * 4096 + 1024 * 1024
                * (8 + 64))
        // As in PyTorch, a module lists its own parameters before its children's.
        #expect(
            paper.namedParameters().map(\.name) == [
                "gamma", "f.weight", "f.bias", "g.weight", "g.bias", "h.weight", "h.bias",
            ])
    }
}
