import FileFormats
import Kernels

// The engine's fused optimiser primitive: one pass over a parameter's elements, outside
// differentiation. Optimizers owns Adam itself (its state, step count and bias corrections); this
// is only the elementwise kernel it runs, as torch._fused_adam_ is for torch.optim.Adam.

extension Tensor {
    /// θ ← θ − (m / (√(v / c₂) + ε)) · (lr / c₁) after m ← β₁m + (1−β₁)g and v ← β₂v + (1−β₂)g², in
    /// one pass; nil moments count as zeros. Returns the new parameter and moments, none recorded.
    public static func fusedAdamUpdate(
        parameter: Tensor, gradient: Tensor, first: Tensor?, second: Tensor?,
        learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, correction1: Float, correction2: Float
    ) -> (parameter: Tensor, first: Tensor, second: Tensor) {
        require(
            gradient.shape == parameter.shape,
            "fusedAdamUpdate: gradient \(gradient.shape) does not match parameter \(parameter.shape)")
        require(
            first.map { $0.shape == parameter.shape } ?? true && second.map { $0.shape == parameter.shape } ?? true,
            "fusedAdamUpdate: moments \(first?.shape ?? []) / \(second?.shape ?? []) do not match \(parameter.shape)")
        let step = AdamStep(
            learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            correction1: correction1, correction2: correction2)
        let result = EngineContext.backend.adamUpdate(
            step, parameter: parameter.storage, gradient: gradient.storage,
            first: first?.storage, second: second?.storage)
        return (
            Tensor(shape: parameter.shape, storage: result.parameter),
            Tensor(shape: parameter.shape, storage: result.first),
            Tensor(shape: parameter.shape, storage: result.second)
        )
    }
}
