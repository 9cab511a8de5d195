import ArgumentParser
import Foundation
import Autodiff
import Datasets
import Kernels

#if canImport(Glibc)
import Glibc
#endif

/// Throughput measurements on this machine. Numbers depend on the machine and its load, so they
/// are printed, never asserted by tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure throughput on this machine.", subcommands: [ConvolutionBench.self, LoaderBench.self])
}

/// Times one convolution's forward, backward-data and backward-weights kernels.
struct ConvolutionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "GFLOP/s of a convolution's forward and backward kernels (default: the blog model's 64→128 4x4 stride-2 layer).")

    @Option(help: "Batch size.") var batch = 16
    @Option(help: "Input channels.") var inChannels = 64
    @Option(help: "Output channels.") var outChannels = 128
    @Option(help: "Input height and width.") var size = 64
    @Option(help: "Kernel height and width.") var kernel = 4
    @Option(help: "Stride.") var stride = 2
    @Option(help: "Zero padding on each side.") var padding = 1
    @Option(help: "Timed repetitions of each kernel (after one warm-up).") var iterations = 20
    @Option(help: "Backend: onednn or reference.") var backend = "onednn"
    @Option(help: "Threads for oneDNN (default: all cores).") var threads: Int?

    func validate() throws {
        for (name, value) in [("--batch", batch), ("--in-channels", inChannels), ("--out-channels", outChannels),
                              ("--size", size), ("--kernel", kernel), ("--stride", stride), ("--iterations", iterations)]
        where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        do {
            _ = try geometry()
        } catch let error as ShapeError {
            throw ValidationError(error.description)
        }
    }

    func geometry() throws -> Conv2DGeometry {
        try Conv2DGeometry(batch: batch, inChannels: inChannels, outChannels: outChannels, inHeight: size, inWidth: size,
                           kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding)
    }

    func run() throws {
        if let threads { OneDNNBackend.shared?.setThreadCount(threads) }
        guard let kernels = BackendRegistry.named(backend) else {
            throw ValidationError("--backend \(backend) is not available here; available: \(BackendRegistry.available.map(\.name).joined(separator: ", "))")
        }
        let g = try geometry()
        var generator = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal(g.inputShape, generator: &generator).storage
        let w = Tensor.randomNormal(g.weightShape, generator: &generator).storage
        let dy = Tensor.randomNormal(g.outputShape, generator: &generator).storage
        let flops = 2 * Double(g.multiplyAccumulates)
        print("\(kernels.name): \(g), \(String(format: "%.2f", flops / 1e9)) GFLOP per pass, threads \(OneDNNBackend.shared?.threadCount.map(String.init) ?? "?")")
        let passes: [(String, () -> Void)] = [
            ("forward", { _ = kernels.conv2dForward(g, input: x, weight: w, bias: nil) }),
            ("backward data", { _ = kernels.conv2dBackwardData(g, outputGradient: dy, weight: w) }),
            ("backward weights", { _ = kernels.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: false) }),
        ]
        for (name, pass) in passes {
            pass()
            var times: [Double] = []
            for _ in 0..<iterations {
                let start = monotonicSeconds()
                pass()
                times.append(monotonicSeconds() - start)
            }
            times.sort()
            let median = times[times.count / 2]
            let label = name.padding(toLength: 17, withPad: " ", startingAt: 0)
            print("  " + label + String(format: " median %8.3f ms  min %8.3f ms  %7.1f GFLOP/s (median)  %7.1f GFLOP/s (best)",
                                        median * 1e3, times[0] * 1e3, flops / median / 1e9, flops / times[0] / 1e9))
        }
    }
}

/// Images per second the batch loader delivers (decoding is done at pack time; this measures the
/// mapped reads, shuffling, flips, conversion to floats and the background thread).
struct LoaderBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loader", abstract: "Batch loader throughput in images/s, on a packed file or on synthetic RGB packs at 64 and 128 pixels.")

    @Option(help: "A packed dataset; without it, synthetic 64x64 and 128x128 RGB packs are made in a temporary folder.") var data: String?
    @Option(help: "Images per batch.") var batch = 64
    @Option(help: "Batches to time (after one warm-up batch).") var batches = 50
    @Flag(help: "Mirror images at random, as training can.") var flip = false
    @Flag(help: "Add the article's dequantisation noise.") var dequantize = false

    func run() throws {
        if let data {
            try measure(try PackedDataset(contentsOf: URL(fileURLWithPath: data)))
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sagan-loader-bench-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for side in [64, 128] {
            let url = folder.appendingPathComponent("synthetic-\(side).safetensors")
            let writer = try PackedDatasetWriter(destination: url, height: side, width: side, channels: 3)
            var generator = RandomGenerator(seed: UInt64(side))
            let count = max(batch * 4, 256)
            for _ in 0..<count {
                let pixels = generator.uniform(count: side * side * 3).map { UInt8($0 * 255) }
                try writer.append(PixelImage(width: side, height: side, channels: 3, pixels: pixels), label: nil)
            }
            try writer.finish(metadata: ["source": "synthetic"], labelNames: [])
            try measure(try PackedDataset(contentsOf: url))
        }
    }

    func measure(_ dataset: PackedDataset) throws {
        let loader = try BatchLoader(dataset: dataset, options: .init(batchSize: batch, seed: 1, horizontalFlip: flip, dequantize: dequantize))
        _ = try loader.next()
        let start = monotonicSeconds()
        for _ in 0..<batches { _ = try loader.next() }
        let seconds = monotonicSeconds() - start
        print("\(dataset.width)x\(dataset.height)x\(dataset.channels), batch \(batch): \(String(format: "%.0f", Double(batch * batches) / seconds)) images/s (\(String(format: "%.2f", seconds * 1000 / Double(batches))) ms per batch)")
    }
}
