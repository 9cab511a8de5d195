import FileFormats
import Kernels

extension Tensor {
    /// Spectral normalisation of `weight`: W/σ with σ = uᵀ W v for W the (outputs, rest) matrix
    /// that puts `blocks` row-major (outputs, inner) slices of the weight side by side (see
    /// `SpectralNormGeometry`). With `powerIteration`, first v ← l2n(Wᵀ u), u ← l2n(W v). The result
    /// is differentiable in the weight with u and v constant; σ, u and v come back as values.
    public static func spectralNormalized(
        _ weight: Tensor, blocks: Int, u: Tensor, v: Tensor, powerIteration: Bool, epsilon: Float
    )
        -> (weight: Tensor, sigma: Float, u: Tensor, v: Tensor)
    {
        let outputs = u.count
        require(
            blocks > 0 && outputs > 0 && weight.count % (blocks * outputs) == 0,
            "spectralNormalized: weight \(weight.shape) is not \(blocks) block(s) of \(outputs) rows (the length of u)")
        var g = validated {
            try SpectralNormGeometry(
                blocks: blocks, outputs: outputs, inner: weight.count / (blocks * outputs), epsilon: epsilon,
                weightShape: weight.shape)
        }
        g.precision = EngineContext.precision
        require(
            v.count == g.rightCount,
            "spectralNormalized: v has \(v.count) elements, the weight \(weight.shape) needs \(g.rightCount)")
        let backend = EngineContext.backend
        let result = backend.spectralNorm(
            g, weight: weight.storage, u: u.storage, v: v.storage, powerIteration: powerIteration)
        let (shape, raw) = (weight.shape, weight.storage)
        // Only products read W/σ, and under bf16 they read it rounded: rounded here, it moves in half the bytes.
        let value = ResultPrecision.product(result.weight, g.precision)
        let normalized = record("spectralNormalized", shape: shape, storage: value, inputs: [weight]) {
            gradient, _ in
            [
                Tensor(
                    shape: shape,
                    storage: backend.spectralNormBackward(
                        g, weight: raw, outputGradient: gradient.storage,
                        u: result.u, v: result.v, sigma: result.sigma))
            ]
        }
        return (
            normalized, result.sigma, Tensor(shape: u.shape, storage: result.u),
            Tensor(shape: v.shape, storage: result.v)
        )
    }
}
