import Kernels

/// The number formats operations can compute in (Kernels' `Precision`, named here for the layers above).
public typealias Precision = Kernels.Precision

/// A backend's name, as `--backend` spells it (Kernels' `BackendID`, named here for the layers above).
public typealias BackendID = Kernels.BackendID

/// Task-local engine settings: which backend computes, and whether operations are recorded for
/// differentiation. Task-local rather than global so that concurrent work can choose differently.
public enum EngineContext {
    /// The backend new operations run on. The pullbacks of recorded operations keep the backend
    /// that ran their forward.
    @TaskLocal public static var backend: any Backend = defaultBackend

    /// False inside `noGrad { }`: operations then record nothing.
    @TaskLocal public static var isRecording = true

    /// The format of the products of convolutions, linear layers and attention started now (see
    /// `Precision`); their gradients run in the format of their forward.
    @TaskLocal public static var precision = Precision.fp32

    /// The fastest backend available on this machine.
    public static let defaultBackend: any Backend = BackendRegistry.fastest
}

/// Runs `body` with operations computed by `backend`.
public func withBackend<R>(_ backend: any Backend, _ body: () throws -> R) rethrows -> R {
    try EngineContext.$backend.withValue(backend) { try body() }
}

/// Runs `body` with convolutions, linear layers and attention computed in `precision`.
public func withPrecision<R>(_ precision: Precision, _ body: () throws -> R) rethrows -> R {
    try EngineContext.$precision.withValue(precision) { try body() }
}

/// Runs `body` without recording operations: nothing inside can be differentiated, and no
/// graph memory is kept (generator samples for the discriminator step, statistics updates).
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    try EngineContext.$isRecording.withValue(false) { try body() }
}

/// Unwraps the result of a kernel geometry check, stopping with its message on failure.
func validated<G>(_ make: () throws -> G) -> G {
    do { return try make() } catch { fatalError("\(error)") }
}
