import Autodiff
import Foundation
import Synchronization

/// Time of one allreduce (sum) of `floats` fp32 values across the ranks of a group.
public struct AllreduceTiming: Sendable, Encodable {
    public let ranks: Int
    public let floats: Int
    public let bytes: Int
    public let medianSeconds: Double
    public let bestSeconds: Double
    /// Bytes reduced per second (the buffer size over the median time).
    public let algorithmBandwidth: Double
    /// What each rank's link carried per second in a ring allreduce, which sends and receives
    /// 2(N − 1)/N of the buffer per rank: comparable with a link's rated speed whatever N is.
    public let busBandwidth: Double

    init(ranks: Int, floats: Int, seconds: [Double]) {
        let sorted = seconds.sorted()
        (self.ranks, self.floats, bytes) = (ranks, floats, floats * MemoryLayout<Float>.size)
        (medianSeconds, bestSeconds) = (sorted[sorted.count / 2], sorted[0])
        algorithmBandwidth = Double(bytes) / medianSeconds
        busBandwidth = algorithmBandwidth * 2 * Double(ranks - 1) / Double(ranks)
    }

    enum CodingKeys: String, CodingKey {
        case ranks, floats, bytes
        case medianSeconds = "median_seconds"
        case bestSeconds = "best_seconds"
        case algorithmBandwidth = "algorithm_bytes_per_second"
        case busBandwidth = "bus_bytes_per_second"
    }
}

/// Times allreduce the way data-parallel training uses it: one flat fp32 buffer summed in place.
public enum AllreduceBenchmark {
    /// Every rank must call this with the same arguments. Before each timed allreduce the ranks
    /// synchronise (a one-value allreduce), so a time is that of the slowest rank.
    public static func run(_ group: any ProcessGroup, floats: Int, iterations: Int, warmup: Int = 2) -> AllreduceTiming
    {
        var buffer = [Float](repeating: 1, count: floats)  // (floats)
        let clock = ContinuousClock()
        var seconds: [Double] = []
        for iteration in 0..<(warmup + iterations) {
            _ = group.any(false)
            let elapsed = clock.measure { buffer.withUnsafeMutableBufferPointer { group.sum($0) } }
            if iteration >= warmup { seconds.append(elapsed.seconds) }
        }
        return AllreduceTiming(ranks: group.size, floats: floats, seconds: seconds)
    }
}

/// A process group that also adds up the time spent in collectives and counts them: the
/// communication share of a distributed training step (gradient averaging, synchronised batch norm).
final class TimedProcessGroup: ProcessGroup {
    let inner: any ProcessGroup
    private let nanoseconds = Atomic<Int>(0)
    private let calls = Atomic<Int>(0)

    init(_ inner: any ProcessGroup) { self.inner = inner }

    var rank: Int { inner.rank }
    var size: Int { inner.size }
    /// Seconds spent in collectives so far.
    var seconds: Double { Double(nanoseconds.load(ordering: .relaxed)) * 1e-9 }
    /// Collectives called so far.
    var count: Int { calls.load(ordering: .relaxed) }

    private func timed<R>(_ body: () -> R) -> R {
        let start = ContinuousClock.now
        let result = body()
        nanoseconds.add(Int((ContinuousClock.now - start).seconds * 1e9), ordering: .relaxed)
        calls.add(1, ordering: .relaxed)
        return result
    }

    func sum(_ values: UnsafeMutableBufferPointer<Float>) { timed { inner.sum(values) } }
    func extremes(_ values: [UInt32]) -> (minimum: [UInt32], maximum: [UInt32]) { timed { inner.extremes(values) } }
    func gather(_ bytes: [UInt8]) -> [[UInt8]] { timed { inner.gather(bytes) } }
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {
        timed { inner.broadcast(buffer, from: root) }
    }
}
