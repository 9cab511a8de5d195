import Autodiff
import Datasets

/// How much memory training at a batch size will take, measured rather than guessed: one step at
/// batch 2 and one at batch 4 of a throwaway trainer with the same model give the fixed part and
/// the part per image of the peak tensor memory, which is extrapolated to the real batch.
public struct MemoryEstimate: Sendable, Equatable {
    /// Peak tensor memory expected at `batchSize`, in bytes, with a margin for the buffer pool's
    /// rounding and the kernels' scratch memory.
    public let bytes: Int
    public let bytesPerImage: Int
    public let batchSize: Int
    /// What the process may still take (`Engine.availableMemoryBytes`), if known.
    public let availableBytes: Int?

    /// The margin over measured tensor memory (the pool rounds up; oneDNN has scratch space).
    static let margin = 1.25

    /// Measures the estimate for `config` at its batch size.
    public static func measure(_ config: TrainConfig) -> MemoryEstimate {
        let small = peak(config, batch: 2)
        let large = peak(config, batch: 4)
        let perImage = max(0, (large - small) / 2)
        let fixed = max(0, small - 2 * perImage)
        let bytes = Int(Double(fixed + perImage * config.batchSize) * margin)
        return MemoryEstimate(
            bytes: bytes, bytesPerImage: Int(Double(perImage) * margin), batchSize: config.batchSize,
            availableBytes: Engine.availableMemoryBytes)
    }

    /// The same measurement extrapolated to another batch size.
    public func atBatchSize(_ batch: Int) -> MemoryEstimate {
        MemoryEstimate(
            bytes: bytes + bytesPerImage * (batch - batchSize), bytesPerImage: bytesPerImage, batchSize: batch,
            availableBytes: availableBytes)
    }

    /// Whether the estimate fits in the memory left.
    public var fits: Bool { availableBytes.map { bytes <= $0 } ?? true }

    /// The largest batch that fits, if memory is known.
    public var largestBatch: Int? {
        guard let availableBytes, bytesPerImage > 0 else { return nil }
        let fixed = bytes - bytesPerImage * batchSize
        return max(0, (availableBytes - fixed) / bytesPerImage)
    }

    /// Peak tensor bytes of one training step at `batch` on synthetic images.
    static func peak(_ config: TrainConfig, batch: Int) -> Int {
        var small = config
        small.batchSize = batch
        small.sampleCount = 1
        // Memory does not depend on the learning rates; the run's own (perhaps huge, being rescued)
        // could make the throwaway step non-finite before it allocated everything.
        small.learningRateG = 1e-4
        small.learningRateD = 1e-4
        let trainer = Trainer(config: small)
        var random = RandomGenerator(seed: 5)
        let side = config.model.resolution
        let images = Tensor.randomUniform(  // (B, C, R, R)
            [batch, config.model.imageChannels, side, side], low: -1, high: 1, generator: &random)
        let labels = config.model.classCount > 0 ? [Int](repeating: 0, count: batch) : nil
        let synthetic = Batch(images: images, labels: labels, cursor: LoaderCursor())
        return Engine.peakTensorBytes { _ = try? trainer.trainStep { synthetic } }.bytes
    }
}
