import Autodiff
import Dispatch
import Hummingbird
import Synchronization

/// Runs the studio's engine work (loading models, generating, recording attention) one job at a
/// time on a thread of its own: the engine already uses every core for one job, so concurrent
/// requests wait their turn instead of competing, and the server's threads stay free meanwhile.
/// When `limit` jobs are waiting, more are refused with 503 rather than queued without end.
final class ComputeQueue: Sendable {
    private let queue = DispatchQueue(label: "sagan.studio.compute")
    private let pending = Mutex(0)
    let limit: Int
    let engine: EngineConfiguration

    init(engine: EngineConfiguration, limit: Int = 32) {
        self.engine = engine
        self.limit = limit
    }

    /// `body`'s result, computed on the queue with the engine configured.
    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        let admitted = pending.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard admitted else {
            throw HTTPError(.serviceUnavailable, message: "busy: \(limit) requests are waiting for the model; retry")
        }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                defer { pending.withLock { $0 -= 1 } }
                continuation.resume(with: Result { try Engine.run(engine, body) })
            }
        }
    }
}
