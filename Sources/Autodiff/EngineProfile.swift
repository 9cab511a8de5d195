import Kernels

/// Where the time went while a body ran: every kernel's calls, time and allocations, the
/// convolutions by shape, and the most tensor memory alive at once (`sagan bench --profile`).
public struct EngineProfile: Sendable, Codable {
    public struct Kernel: Sendable, Codable {
        public let kernel: String
        public let calls: Int
        public let seconds: Double
        public let allocatedBytes: Int
    }

    public struct Convolution: Sendable, Codable {
        /// The kernel and shape: in→out channels, input size, kernel, stride, batch.
        public let kernel: String
        public let calls: Int
        public let seconds: Double
        public let flops: Double
    }

    /// Slowest first.
    public let kernels: [Kernel]
    /// Slowest first.
    public let convolutions: [Convolution]
    /// The most tensor storage alive at once (kernel scratch memory outside storages not counted).
    public let peakLiveBytes: Int
}

/// Measures the kernels that bodies run; `reset()` after warm-up calls leaves them out.
public final class EngineProfiler {
    private let profiler: ProfilingBackend

    /// Wraps the backend operations run on now.
    public init() { profiler = ProfilingBackend(EngineContext.backend) }

    /// Runs `body` on the measured backend.
    public func run<R>(_ body: () throws -> R) rethrows -> R { try withBackend(profiler, body) }

    /// Forgets what was measured so far and restarts the peak memory count.
    public func reset() {
        profiler.reset()
        StorageStatistics.resetPeak()
    }

    /// What was measured since the last reset.
    public var profile: EngineProfile {
        EngineProfile(
            kernels: profiler.report.map {
                .init(kernel: $0.kernel, calls: $0.calls, seconds: $0.seconds, allocatedBytes: $0.bytes)
            },
            convolutions: profiler.convolutionReport.map {
                .init(kernel: $0.kernel, calls: $0.calls, seconds: $0.seconds, flops: $0.flops)
            },
            peakLiveBytes: StorageStatistics.peakLiveBytes)
    }
}
