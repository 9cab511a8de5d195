import Autodiff
import Foundation
import Kernels
import NeuralNet
import TestSupport
import Testing

/// Results written by several threads, read after they all finished.
final class Results<R>: @unchecked Sendable {
    var values: [R?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
}

/// Ranks as threads of this process: collectives meet at a shared rendezvous. Enough to run the
/// collective arithmetic of synchronised batch norm without MPI (which DistributedTrainingTests runs).
final class ThreadRanks: ProcessGroup, @unchecked Sendable {
    /// Where the ranks' contributions meet; each exchange returns every rank's, in rank order.
    final class Rendezvous: @unchecked Sendable {
        private let condition = NSCondition()
        private var slots: [[UInt8]]
        private var arrived = 0
        private var round = 0
        private var result: [[UInt8]] = []

        init(size: Int) { slots = Array(repeating: [], count: size) }

        func exchange(_ rank: Int, _ bytes: [UInt8]) -> [[UInt8]] {
            condition.lock()
            defer { condition.unlock() }
            slots[rank] = bytes
            arrived += 1
            if arrived == slots.count {
                (result, arrived, round) = (slots, 0, round + 1)
                condition.broadcast()
                return result
            }
            let waitingFor = round
            while round == waitingFor { condition.wait() }
            return result
        }
    }

    let rank: Int
    let size: Int
    private let rendezvous: Rendezvous

    init(rank: Int, rendezvous: Rendezvous, size: Int) {
        (self.rank, self.rendezvous, self.size) = (rank, rendezvous, size)
    }

    func sum(_ values: UnsafeMutableBufferPointer<Float>) {
        let all = gather(Array(UnsafeRawBufferPointer(values))).map { bytes in
            bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        for index in values.indices { values[index] = all.reduce(0) { $0 + $1[index] } }
    }

    func extremes(_ values: [UInt32]) -> (minimum: [UInt32], maximum: [UInt32]) {
        let all = gather(values.withUnsafeBytes { Array($0) }).map { bytes in
            bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        }
        return (
            values.indices.map { index in all.map { $0[index] }.min()! },
            values.indices.map { index in all.map { $0[index] }.max()! }
        )
    }

    func gather(_ bytes: [UInt8]) -> [[UInt8]] { rendezvous.exchange(rank, bytes) }

    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {
        let sent = gather(Array(buffer))[root]
        if rank != root { buffer.copyBytes(from: sent) }
    }

    /// Runs `body` once per rank, each on its own thread, and returns the results in rank order.
    static func run<R>(_ size: Int, _ body: @escaping @Sendable (ThreadRanks) -> R) -> [R] {
        let rendezvous = Rendezvous(size: size)
        let results = Results<R>(count: size)
        let done = DispatchGroup()
        let lock = NSLock()
        for rank in 0..<size {
            done.enter()
            Thread {
                let value = body(ThreadRanks(rank: rank, rendezvous: rendezvous, size: size))
                lock.withLock { results.values[rank] = value }
                done.leave()
            }.start()
        }
        done.wait()
        return results.values.map { $0! }
    }
}

@Suite("Synchronised batch norm")
struct SynchronizedBatchNormTests {
    struct Outcome: Sendable {
        let output: [Float]
        let running: [Float]
        let inputGradient: [Float]
        let parameterGradients: [[Float]]
    }

    /// BatchNorm2d on `x` (optionally synchronised over `group`), loss Σ output·upstream.
    static func run(_ x: Tensor, _ upstream: Tensor, _ affine: BatchNorm2d.Affine, _ group: (any ProcessGroup)?)
        -> Outcome
    {
        let norm = BatchNorm2d(channels: x.shape[1], affine: affine)
        norm.synchronization = group
        let leaves = [x.trackingGradients()] + [norm.weight, norm.bias].compactMap { $0?.value }
        var output = Tensor(0)
        let (_, gradients) = valueAndGradients(
            of: {
                output = norm(leaves[0])
                return (output * upstream).sum()
            }, wrt: leaves)
        return Outcome(
            output: output.scalars, running: norm.runningMean.value.scalars + norm.runningVar.value.scalars,
            inputGradient: gradients[0].scalars, parameterGradients: gradients.dropFirst().map(\.scalars))
    }

    /// 1, 2 and 3 ranks, each with its rows of a batch, against the fused kernel on the whole batch:
    /// the same output and running statistics, each rank's input gradient is its rows of the whole
    /// batch's, and the ranks' scale and shift gradients add up to the whole batch's (the loss is the
    /// sum of the ranks' losses). The channel means are far from zero, as after a convolution.
    @Test(arguments: [BatchNorm2d.Affine.scaleAndShift, .shiftOnly, .none], [1, 2, 3])
    func ranksTogetherNormaliseLikeOneBatch(_ affine: BatchNorm2d.Affine, ranks: Int) {
        for backend in backendsUnderTest {
            withBackend(backend) { Self.compare(affine, ranks: ranks, backend: backend) }
        }
    }

    static func compare(_ affine: BatchNorm2d.Affine, ranks: Int, backend: any Backend) {
        var generator = RandomGenerator(seed: 21)
        let rows = 2
        let x = Tensor.randomNormal([rows * ranks, 5, 4, 3], generator: &generator) * 3 + 4  // (N, C, H, W)
        let upstream = Tensor.randomNormal(x.shape, generator: &generator)  // like x
        let whole = Self.run(x, upstream, affine, nil)
        // Threads do not inherit the caller's backend: each rank sets it.
        let parts = ThreadRanks.run(ranks) { group in
            let slice = group.rank * rows..<(group.rank + 1) * rows
            return withBackend(backend) {
                Self.run(x.sliced(alongAxis: 0, slice), upstream.sliced(alongAxis: 0, slice), affine, group)
            }
        }
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            let worst = zip(a, b).map { Swift.abs($0 - $1) / max(1, Swift.abs($1)) }.max() ?? 0
            #expect(a.count == b.count && worst <= 2e-5, "\(backend.name) \(what): worst difference \(worst)")
        }
        close(parts.flatMap(\.output), whole.output, "output")
        close(parts.flatMap(\.inputGradient), whole.inputGradient, "input gradient")
        for part in parts { close(part.running, whole.running, "running statistics") }
        for (index, gradient) in whole.parameterGradients.enumerated() {
            let summed = parts.map { $0.parameterGradients[index] }.reduce(
                [Float](repeating: 0, count: gradient.count)
            ) { zip($0, $1).map { $0 + $1 } }
            close(summed, gradient, "parameter gradient \(index)")
        }
    }
}
