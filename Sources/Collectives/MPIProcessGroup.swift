import Autodiff
import CCollectives

/// The ranks of a job started by an MPI launcher (`mpirun -np N`, `srun --mpi=pmix`), over Open MPI.
/// MPI's default error handler stays in place: a failed collective (a rank that died) ends the
/// process, and the launcher ends the job and names the rank it lost.
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int

    private init(rank: Int, size: Int) {
        (self.rank, self.size) = (rank, size)
    }

    /// Whether an MPI launcher started this process (its environment says so).
    public static var isLaunched: Bool { sagan_mpi_launched() != 0 }

    /// Initialises MPI when an MPI launcher started this process; nil otherwise, and MPI is not
    /// touched. Call once, after the process's last exec and before any thread starts.
    public static func joinIfLaunched() throws -> MPIProcessGroup? {
        guard isLaunched else { return nil }
        var (rank, size) = (Int32(0), Int32(0))
        var message = [CChar](repeating: 0, count: 512)
        let status = sagan_mpi_init(&rank, &size, &message, Int32(message.count))
        guard status == 0 else {
            throw CollectiveError.initialisation(
                String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return MPIProcessGroup(rank: Int(rank), size: Int(size))
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) {
        guard let base = values.baseAddress else { return }
        check(sagan_mpi_allreduce_sum_float(base, values.count), "allreduce")
    }

    public func extremes(_ values: [UInt32]) -> (minimum: [UInt32], maximum: [UInt32]) {
        var minimum = values
        var maximum = values
        check(sagan_mpi_allreduce_extreme_uint32(&minimum, minimum.count, 0), "allreduce (minimum)")
        check(sagan_mpi_allreduce_extreme_uint32(&maximum, maximum.count, 1), "allreduce (maximum)")
        return (minimum, maximum)
    }

    public func gather(_ bytes: [UInt8]) -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: bytes.count * size)
        check(sagan_mpi_allgather_bytes(bytes, &all, Int32(bytes.count)), "allgather")
        return (0..<size).map { Array(all[$0 * bytes.count..<($0 + 1) * bytes.count]) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {
        guard let base = buffer.baseAddress else { return }
        check(sagan_mpi_broadcast_bytes(base, buffer.count, Int32(root)), "broadcast")
    }

    /// Waits for every rank.
    public func barrier() { check(sagan_mpi_barrier(), "barrier") }

    /// Ends every process of the job with `status`.
    public func abort(status: Int32) -> Never {
        sagan_mpi_abort(status)
        fatalError("MPI_Abort returned")
    }

    /// Shuts MPI down; the process's last MPI call.
    public func finalize() { _ = sagan_mpi_finalize() }

    /// MPI's default handler ends the process on an error before a call returns one; a code that
    /// does come back is a broken invariant.
    private func check(_ status: Int32, _ what: String) {
        precondition(status == 0, "MPI \(what) failed with code \(status) on rank \(rank)")
    }
}

/// Why MPI could not start.
public enum CollectiveError: Error, CustomStringConvertible {
    case initialisation(String)

    public var description: String {
        switch self {
        case .initialisation(let message): return "MPI could not start: \(message)"
        }
    }
}
