import Autodiff

/// Spectral normalisation (Miyato et al., ICLR 2018) of one weight: W_SN = W / σ(W), with σ the
/// largest singular value of W viewed as a matrix (output channels) × (everything else),
/// estimated by one power iteration per training forward from a persistent vector u.
///
/// u and v are buffers (saved in checkpoints, never optimised). The power iteration runs without
/// gradients, so ∂σ/∂W = u vᵀ and the gradient flows through σ as in the paper (§2.2); in
/// evaluation mode u and v are used as stored, as PyTorch does, so outputs are deterministic.
public struct SpectralNormalizer: Sendable {
    /// Which axis of the stored weight holds the output channels: 0 for Linear [out, in] and
    /// Conv2d [out, in, kh, kw], 1 for ConvTranspose2d [in, out, kh, kw].
    public let outputAxis: Int
    /// ε inside the ℓ2 normalisations.
    public let epsilon: Float

    public init(outputAxis: Int, epsilon: Float = 1e-12) {
        self.outputAxis = outputAxis
        self.epsilon = epsilon
    }

    /// The weight as `blocks` (out, k) matrices whose side-by-side concatenation is the (out, rest)
    /// matrix: one block for Linear and Conv2d; for a transposed convolution's [in, out, k, k]
    /// weight, one block per input channel, so the permuted matrix is never materialised (v is then
    /// ordered (in, k·k), as in the permuted matrix).
    func blocks(_ weight: Tensor) -> Tensor {
        let outputs = weight.shape[outputAxis]
        let count = outputAxis == 0 ? 1 : weight.shape[0]
        return weight.reshaped(to: [count, outputs, weight.count / outputs / count])  // (blocks, out, k)
    }

    /// l2n(Wᵀ u), flattened to (blocks·k).
    func rightVector(_ w: Tensor, _ u: Tensor) -> Tensor {
        let (count, outputs, inner) = (w.shape[0], w.shape[1], w.shape[2])
        return Tensor.matmul(w, u.reshaped(to: [1, outputs, 1]), transposeA: true)  // (blocks, k, 1)
            .reshaped(to: [count * inner]).l2Normalized(epsilon: epsilon)
    }

    /// Initial u ~ N(0, I) normalised, and v = l2n(Wᵀ u), so σ is meaningful before any training step.
    public func initialVectors(for weight: Tensor, generator: inout RandomGenerator) -> (u: Tensor, v: Tensor) {
        noGrad {
            let w = blocks(weight.detached())
            let u = Tensor.randomNormal([w.shape[1]], generator: &generator).l2Normalized(epsilon: epsilon)
            return (u, rightVector(w, u))
        }
    }

    /// W / σ, after one power iteration that updates u and v when `training`. Also returns σ.
    public func normalize(_ weight: Tensor, u: Buffer, v: Buffer, training: Bool) -> (weight: Tensor, sigma: Float) {
        let blockCount = outputAxis == 0 ? 1 : weight.shape[0]
        let result = Tensor.spectralNormalized(
            weight, blocks: blockCount, u: u.value, v: v.value, powerIteration: training, epsilon: epsilon)
        if training {
            u.assign(result.u)
            v.assign(result.v)
        }
        return (result.weight, result.sigma)
    }
}
