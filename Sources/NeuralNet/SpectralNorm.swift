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

    /// The weight as an (out, k) matrix, differentiably (a copy for transposed convolutions).
    public func matrix(_ weight: Tensor) -> Tensor {
        let outputs = weight.shape[outputAxis]
        if outputAxis == 0 { return weight.reshaped(to: [outputs, -1]) }
        var permutation = Array(0..<weight.rank)
        permutation.swapAt(0, outputAxis)
        return weight.permuted(permutation).reshaped(to: [outputs, -1])
    }

    /// Initial u ~ N(0, I) normalised, and v = l2n(Wᵀ u), so σ is meaningful before any training step.
    public func initialVectors(for weight: Tensor, generator: inout RandomGenerator) -> (u: Tensor, v: Tensor) {
        noGrad {
            let w = matrix(weight.detached())                                                   // (out, k)
            let u = Tensor.randomNormal([w.shape[0]], generator: &generator).l2Normalized(epsilon: epsilon)
            let v = Tensor.matmul(w, u.reshaped(to: [w.shape[0], 1]), transposeA: true).reshaped(to: [w.shape[1]])
            return (u, v.l2Normalized(epsilon: epsilon))
        }
    }

    /// W / σ, after one power iteration that updates u and v when `training`. Also returns σ.
    ///
    /// For a transposed convolution's [in, out, k, k] weight the (out, in·k·k) matrix is never
    /// materialised: W is read as `in` blocks of (out, k·k) and the products are batched matrix
    /// products summed over the blocks (v is ordered (in, k·k), as in the permuted matrix).
    public func normalize(_ weight: Tensor, u: Buffer, v: Buffer, training: Bool) -> (weight: Tensor, sigma: Tensor) {
        let outputs = weight.shape[outputAxis]
        let blocks = outputAxis == 0 ? 1 : weight.shape[0]
        let inner = weight.count / outputs / blocks
        let w = weight.reshaped(to: [blocks, outputs, inner])                                 // (blocks, out, k)
        if training {
            noGrad {
                let constant = w.detached()
                let newV = Tensor.matmul(constant, u.value.reshaped(to: [1, outputs, 1]), transposeA: true)   // (blocks, k, 1)
                    .reshaped(to: [blocks * inner]).l2Normalized(epsilon: epsilon)
                let newU = Tensor.matmul(constant, newV.reshaped(to: [blocks, inner, 1]))                   // (blocks, out, 1)
                    .sum(alongAxes: [0]).reshaped(to: [outputs]).l2Normalized(epsilon: epsilon)
                v.assign(newV)
                u.assign(newU)
            }
        }
        // σ = uᵀ W v with u and v constants: differentiable in W only.
        let wv = Tensor.matmul(w, v.value.reshaped(to: [blocks, inner, 1])).sum(alongAxes: [0])    // (out, 1)
        let sigma = Tensor.matmul(u.value.reshaped(to: [1, outputs]), wv).reshaped(to: [])          // ()
        return (weight / sigma, sigma)
    }
}
