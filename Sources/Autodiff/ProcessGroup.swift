/// The processes of one data-parallel job (MPI's ranks) and the collective operations training
/// needs. Every rank calls the same collectives in the same order; each returns on every rank with
/// the same result. Implemented over MPI by the Collectives module; a run without one is a single
/// process.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's rank, 0 ..< size. Rank 0 writes the run's files.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Elementwise sums across all ranks, in place.
    func sum(_ values: UnsafeMutableBufferPointer<Float>)
    /// Elementwise minimum and maximum across all ranks.
    func extremes(_ values: [UInt32]) -> (minimum: [UInt32], maximum: [UInt32])
    /// Every rank's bytes, in rank order (all the same length).
    func gather(_ bytes: [UInt8]) -> [[UInt8]]
    /// `root`'s bytes, on every rank: each passes a buffer of the same size, overwritten except on root.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int)
}

extension ProcessGroup {
    /// Elementwise sums across all ranks.
    public func sum(_ values: [Float]) -> [Float] {
        var result = values
        result.withUnsafeMutableBufferPointer { sum($0) }
        return result
    }

    /// `root`'s bytes (of any length), on every rank; the others pass nil.
    public func broadcast(_ bytes: [UInt8]?, from root: Int) -> [UInt8] {
        var count = UInt64(bytes?.count ?? 0)
        withUnsafeMutableBytes(of: &count) { broadcast($0, from: root) }
        var result = rank == root ? (bytes ?? []) : [UInt8](repeating: 0, count: Int(count))
        result.withUnsafeMutableBytes { broadcast($0, from: root) }
        return result
    }

    /// Whether any rank passed true.
    public func any(_ flag: Bool) -> Bool { extremes([flag ? 1 : 0]).maximum[0] == 1 }
}

extension Tensor {
    /// This tensor summed elementwise over every rank of `group`, on every rank. Its gradient is the
    /// sum over ranks of theirs: each rank's loss depends on every rank's input through the sum.
    /// Synchronised batch norm builds its statistics with it.
    public func summedAcrossRanks(_ group: any ProcessGroup) -> Tensor {
        let total = Tensor(shape: shape, scalars: group.sum(scalars))
        return Tensor.record("summedAcrossRanks", shape: shape, storage: total.storage, inputs: [self]) { gradient, _ in
            [Tensor(shape: gradient.shape, scalars: group.sum(gradient.scalars))]
        }
    }
}
