import Autodiff
import Foundation

/// Images per second the batch loader delivers: the mapped reads, shuffling, flips, conversion to
/// floats and the background thread (decoding happens at pack time).
public struct LoaderThroughput: Sendable, Codable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public let batchSize: Int
    public let imagesPerSecond: Double
    public let millisecondsPerBatch: Double
}

/// Measures `BatchLoader` on a pack, or on synthetic RGB packs made for the purpose.
public enum LoaderBenchmark {
    /// Times `batches` batches after one warm-up batch.
    public static func measure(
        _ dataset: PackedDataset, batchSize: Int, batches: Int, horizontalFlip: Bool = false, dequantize: Bool = false
    ) throws -> LoaderThroughput {
        let options = BatchLoader.Options(
            batchSize: batchSize, seed: 1, horizontalFlip: horizontalFlip, dequantize: dequantize)
        let loader = try BatchLoader(dataset: dataset, options: options)
        _ = try loader.next()
        let seconds = try ContinuousClock().measure {
            for _ in 0..<batches { _ = try loader.next() }
        }.seconds
        return LoaderThroughput(
            width: dataset.width, height: dataset.height, channels: dataset.channels, batchSize: batchSize,
            imagesPerSecond: Double(batchSize * batches) / seconds,
            millisecondsPerBatch: seconds * 1000 / Double(batches))
    }

    /// Writes a pack of `count` random `side`x`side` RGB images to `url`.
    public static func writeSyntheticPack(side: Int, count: Int, to url: URL) throws {
        let writer = try PackedDatasetWriter(destination: url, height: side, width: side, channels: 3)
        var generator = RandomGenerator(seed: UInt64(side))
        for _ in 0..<count {
            let pixels = generator.uniform(count: side * side * 3).map { UInt8($0 * 255) }
            try writer.append(PixelImage(width: side, height: side, channels: 3, pixels: pixels), label: nil)
        }
        try writer.finish(metadata: ["source": "synthetic"], labelNames: [])
    }
}
