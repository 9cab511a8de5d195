import Kernels

// Optimiser updates: single passes over a parameter's elements, outside differentiation.

extension Tensor {
    /// One Adam update (see `AdamStep`) of `parameter` with `gradient`, fused into one pass;
    /// nil moments count as zeros. Returns the new parameter and moments, none of them recorded.
    public static func adamUpdate(_ step: AdamStep, parameter: Tensor, gradient: Tensor, first: Tensor?, second: Tensor?)
        -> (parameter: Tensor, first: Tensor, second: Tensor)
    {
        require(gradient.shape == parameter.shape, "adamUpdate: gradient \(gradient.shape) does not match parameter \(parameter.shape)")
        require(first.map { $0.shape == parameter.shape } ?? true && second.map { $0.shape == parameter.shape } ?? true,
                "adamUpdate: moments \(first?.shape ?? []) / \(second?.shape ?? []) do not match parameter \(parameter.shape)")
        let result = EngineContext.backend.adamUpdate(step, parameter: parameter.storage, gradient: gradient.storage,
                                                      first: first?.storage, second: second?.storage)
        return (Tensor(shape: parameter.shape, storage: result.parameter), Tensor(shape: parameter.shape, storage: result.first),
                Tensor(shape: parameter.shape, storage: result.second))
    }
}
