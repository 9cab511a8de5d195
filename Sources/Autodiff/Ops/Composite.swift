import FileFormats

// Functions built from primitive operations; their gradients follow from the primitives'.

extension Tensor {
    /// Σ a·b over all elements (the inner product of equally shaped tensors).
    public static func dot(_ a: Tensor, _ b: Tensor) -> Tensor {
        require(a.shape == b.shape, "dot: shapes \(a.shape) and \(b.shape) differ")
        return (a * b).sum()
    }

    /// x / (‖x‖₂ + ε) over all elements (spectral normalisation's power iteration).
    public func l2Normalized(epsilon: Float = 1e-12) -> Tensor {
        self / (squared().sum().sqrt() + epsilon)
    }
}
