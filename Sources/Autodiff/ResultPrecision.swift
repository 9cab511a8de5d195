import Kernels

/// Where values become bf16 under `--precision bf16` (docs/model.md §9). The ops apply these rules
/// to what their backend returns, so every backend rounds at the same points: a backend that writes
/// bf16 itself (oneDNN's bf16 layouts) passes through untouched, one that does not (the reference)
/// has its Float32 result rounded here.
enum ResultPrecision {
    /// A product's result in `precision`: the output of a convolution, linear layer or attention,
    /// and the gradient of an activation flowing back through one. Weight gradients stay Float32.
    static func product(_ storage: Storage, _ precision: Precision) -> Storage {
        precision == .bf16 ? EngineContext.backend.roundedToBF16(storage) : storage
    }

    /// A pointwise result (activation, batch norm, arithmetic, and their gradients): bf16 when every
    /// operand as large as the result is bf16. Broadcast operands (a bias, γ, a scalar) do not decide.
    static func pointwise(_ storage: Storage, operands: [Storage]) -> Storage {
        let full = operands.filter { $0.count == storage.count }
        guard !full.isEmpty, full.allSatisfy({ $0.precision == .bf16 }) else { return storage }
        return EngineContext.backend.roundedToBF16(storage)
    }
}

extension Tensor {
    /// The number format of the values (see `Storage.precision`).
    public var precision: Precision { storage.precision }
}
