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

    /// max(0, 1 + x): the fake-sample term of the hinge loss.
    public func reluOfOnePlus() -> Tensor { affine(scale: 1, shift: 1).relu() }

    /// max(0, 1 − x): the real-sample term of the hinge loss.
    public func reluOfOneMinus() -> Tensor { affine(scale: -1, shift: 1).relu() }
}
