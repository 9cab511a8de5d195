import ArgumentParser
import Datasets
import Foundation

/// Images per second the batch loader delivers (decoding is done at pack time; this measures the
/// mapped reads, shuffling, flips, conversion to floats and the background thread).
struct LoaderBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loader",
        abstract:
            "Batch loader throughput in images/s, on a packed file or on synthetic RGB packs at 64 and 128 pixels.")

    @Option(help: "A packed dataset; without it, synthetic 64x64 and 128x128 RGB packs are made in a temporary folder.")
    var data: String?
    @Option(help: "Images per batch.") var batch = 64
    @Option(help: "Batches to time (after one warm-up batch).") var batches = 50
    @Flag(help: "Mirror images at random, as training can.") var flip = false
    @Flag(help: "Add the article's dequantisation noise.") var dequantize = false

    func run() throws {
        if let data {
            let dataset: PackedDataset
            do { dataset = try PackedDataset(contentsOf: URL(fileURLWithPath: data)) } catch let error as DataError {
                throw ValidationError("--data: \(error.description)")
            }
            return report(
                try LoaderBenchmark.measure(
                    dataset, batchSize: batch, batches: batches, horizontalFlip: flip,
                    dequantize: dequantize))
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sagan-loader-bench-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for side in [64, 128] {
            let url = folder.appendingPathComponent("synthetic-\(side).safetensors")
            try LoaderBenchmark.writeSyntheticPack(side: side, count: max(batch * 4, 256), to: url)
            report(
                try LoaderBenchmark.measure(
                    try PackedDataset(contentsOf: url), batchSize: batch, batches: batches,
                    horizontalFlip: flip, dequantize: dequantize))
        }
    }

    func report(_ result: LoaderThroughput) {
        print(
            "\(result.width)x\(result.height)x\(result.channels), batch \(result.batchSize): "
                + String(
                    format: "%.0f images/s (%.2f ms per batch)", result.imagesPerSecond, result.millisecondsPerBatch))
    }
}
