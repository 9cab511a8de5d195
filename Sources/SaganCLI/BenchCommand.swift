import ArgumentParser
import Foundation
import Autodiff
import CMachine
import Datasets
import GAN
import Kernels

#if canImport(Glibc)
import Glibc
#endif

/// Throughput measurements on this machine. Numbers depend on the machine and its load, so they
/// are printed, never asserted by tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure throughput on this machine.",
        subcommands: [TrainBench.self, ConvolutionBench.self, AttentionBench.self, LoaderBench.self], defaultSubcommand: TrainBench.self)
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
        timeKernelPasses([
            ("forward", flops, { _ = kernels.conv2dForward(g, input: x, weight: w, bias: nil) }),
            ("backward data", flops, { _ = kernels.conv2dBackwardData(g, outputGradient: dy, weight: w) }),
            ("backward weights", flops, { _ = kernels.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: false) }),
        ], iterations: iterations)
    }
}

/// Runs each pass once to warm up, then `iterations` times, and prints its median and best times
/// and GFLOP/s.
func timeKernelPasses(_ passes: [(name: String, flops: Double, run: () -> Void)], iterations: Int) {
    let width = passes.map(\.name.count).max() ?? 0
    for (name, flops, pass) in passes {
        pass()
        var times: [Double] = []
        for _ in 0..<iterations {
            let start = monotonicSeconds()
            pass()
            times.append(monotonicSeconds() - start)
        }
        times.sort()
        let median = times[times.count / 2]
        print("  " + name.padding(toLength: width, withPad: " ", startingAt: 0)
              + String(format: "  median %8.3f ms  min %8.3f ms  %7.1f GFLOP/s (median)  %7.1f GFLOP/s (best)",
                       median * 1e3, times[0] * 1e3, flops / median / 1e9, flops / times[0] / 1e9))
    }
}

/// Times the fused attention kernel's forward and backward passes.
struct AttentionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "GFLOP/s of the fused attention kernel (default: the blog model's 32x32 map with 64 channels).")

    @Option(help: "Batch size.") var batch = 16
    @Option(help: "Value channels (queries and keys get an eighth).") var channels = 64
    @Option(help: "Feature map height and width (queries = keys = size²).") var size = 32
    @Option(help: "Timed repetitions of each pass (after one warm-up).") var iterations = 10
    @Option(help: "Backend: onednn or reference.") var backend = "onednn"
    @Option(help: "Threads for oneDNN (default: all cores).") var threads: Int?

    func validate() throws {
        for (name, value) in [("--batch", batch), ("--size", size), ("--iterations", iterations)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if channels < 8 { throw ValidationError("--channels must be at least 8, got \(channels)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        if let threads { OneDNNBackend.shared?.setThreadCount(threads) }
        guard let kernels = BackendRegistry.named(backend) else {
            throw ValidationError("--backend \(backend) is not available here; available: \(BackendRegistry.available.map(\.name).joined(separator: ", "))")
        }
        let n = size * size
        let g = try AttentionGeometry(batch: batch, keyChannels: channels / 8, valueChannels: channels, queries: n, keys: n)
        var generator = RandomGenerator(seed: 1)
        let q = Tensor.randomNormal([batch, g.keyChannels, n], generator: &generator).storage
        let k = Tensor.randomNormal([batch, g.keyChannels, n], generator: &generator).storage
        let v = Tensor.randomNormal([batch, channels, n], generator: &generator).storage
        let dO = Tensor.randomNormal([batch, channels, n], generator: &generator).storage
        // Multiply-adds per score: forward q·k and P·v; backward recomputes q·k and adds dP, dq, dk, dv.
        let scores = Double(batch * n * n)
        let forwardFlops = 2 * scores * Double(g.keyChannels + channels)
        let backwardFlops = 2 * scores * Double(3 * g.keyChannels + 2 * channels)
        print("\(kernels.name): attention batch \(batch), \(n) queries and keys, \(g.keyChannels)/\(channels) channels, threads \(OneDNNBackend.shared?.threadCount.map(String.init) ?? "?")")
        timeKernelPasses([
            ("forward", forwardFlops, { _ = kernels.attention(g, queries: q, keys: k, values: v) }),
            ("backward", backwardFlops, { _ = kernels.attentionBackward(g, queries: q, keys: k, values: v, outputGradient: dO) }),
        ], iterations: iterations)
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

/// Full training iterations (D step + G step) of a preset on synthetic data.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time full training iterations of a preset on synthetic data: ms/iteration, images/s, GFLOP/s, % of peak, peak memory.")

    @Option(help: "Model preset.") var preset: ModelPreset = .blog128
    @Option(help: "Images per batch.") var batch = 16
    @Option(help: "Timed iterations (after the warm-up).") var iters = 5
    @Option(help: "Warm-up iterations (primitive creation, allocation).") var warmup = 2
    @Option(help: "Threads for oneDNN (default: all cores).") var threads: Int?
    @Option(help: "Image channels.") var channels = 3
    @Option(help: "The machine's peak in GFLOP/s (default: measured with an FMA loop).") var peak: Double?
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Print time per kernel.") var profile = false

    func run() throws {
        if let threads { OneDNNBackend.shared?.setThreadCount(threads) }
        let threadCount = OneDNNBackend.shared?.threadCount ?? 1
        // Measured before any oneDNN work: afterwards its OpenMP threads spin between parallel
        // regions and would take cores from the FMA loop.
        let machinePeak = peak ?? sagan_fma_peak_gflops(Int32(threadCount), 0.5)
        var config: TrainConfig
        do {
            config = try TrainConfig.preset(preset, resolution: preset.defaultResolution, imageChannels: channels)
            config.batchSize = batch
            config.sampleCount = 1
            try config.validate()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        let trainer = Trainer(config: config)
        var random = RandomGenerator(seed: 9)
        let side = config.model.resolution
        let images = Tensor.randomUniform([batch, channels, side, side], low: -1, high: 1, generator: &random)
        let synthetic = Batch(images: images, labels: nil, cursor: LoaderCursor())
        let profiler = ProfilingBackend(EngineContext.backend)
        let backend: any Backend = profile ? profiler : EngineContext.backend
        var times: [Double] = []
        try withBackend(backend) {
            for iteration in 0..<(warmup + iters) {
                if iteration == warmup {
                    profiler.reset()
                    StorageStatistics.resetPeak()
                }
                let start = monotonicSeconds()
                _ = try trainer.trainStep { synthetic }
                if iteration >= warmup { times.append(monotonicSeconds() - start) }
            }
        }
        let gMACs = trainer.generator.summary().reduce(0) { $0 + $1.multiplyAccumulates }
        let dMACs = trainer.discriminator.summary().reduce(0) { $0 + $1.multiplyAccumulates }
        // SAGAN.md §8: G forward twice, D three times; backward 2x for G and D's two weight-gradient passes, 1x for D's data-only pass.
        let flopsPerIteration = 2.0 * Double(batch) * Double(4 * gMACs + 8 * dMACs)
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2], best = sorted[0]
        let achieved = flopsPerIteration / median / 1e9
        let memory = peakResidentMegabytes()
        if json {
            let object: [String: Any] = [
                "preset": preset.rawValue, "batch": batch, "threads": threadCount, "iterations": iters, "ms_median": median * 1e3, "ms_min": best * 1e3,
                "images_per_second": Double(batch) / median, "gflop_per_iteration": flopsPerIteration / 1e9, "gflops": achieved,
                "peak_gflops": machinePeak, "percent_of_peak": 100 * achieved / machinePeak, "peak_rss_mib": memory,
                "backend": EngineContext.backend.name,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("\(preset.rawValue) batch \(batch), \(threadCount) thread\(threadCount == 1 ? "" : "s"), backend \(EngineContext.backend.name): \(String(format: "%.1f", flopsPerIteration / 1e9)) GFLOP per iteration")
            let peakSource = peak == nil ? "measured by an \(String(cString: sagan_fma_instruction_set())) FMA loop" : "given"
            print(String(format: "  %.1f ms per iteration (median of %d; best %.1f ms), %.1f images/s, %.1f GFLOP/s = %.1f%% of peak %.0f GFLOP/s ",
                         median * 1e3, iters, best * 1e3, Double(batch) / median, achieved, 100 * achieved / machinePeak, machinePeak)
                  + "(\(peakSource)); peak RSS \(memory) MiB")
        }
        if profile {
            let report = profiler.report
            let total = report.reduce(0) { $0 + $1.seconds }
            let mebibyte = Double(1 << 20)
            print("kernel time over \(iters) iterations (\(String(format: "%.0f", total * 1e3)) ms in kernels, \(String(format: "%.0f", (times.reduce(0, +) - total) * 1e3)) ms elsewhere);"
                  + " tensor memory: at most \(String(format: "%.0f", Double(StorageStatistics.peakLiveBytes) / mebibyte)) MiB alive at once:")
            print("  kernel                          time   share    calls   allocated per iteration")
            for entry in report.prefix(25) {
                print("  " + entry.kernel.padding(toLength: 28, withPad: " ", startingAt: 0)
                      + String(format: "%8.1f ms  %5.1f%%  %6d  %9.1f MiB", entry.seconds * 1e3, 100 * entry.seconds / max(total, 1e-9), entry.calls,
                               Double(entry.bytes) / mebibyte / Double(iters)))
            }
            print("convolutions by shape (in→out channels, input size, kernel, stride, batch):")
            print("  kernel and shape                                          time   calls   GFLOP/s   of peak")
            for entry in profiler.convolutionReport.prefix(25) {
                let rate = entry.flops / entry.seconds / 1e9
                print("  " + entry.kernel.padding(toLength: 52, withPad: " ", startingAt: 0)
                      + String(format: "%8.1f ms  %6d  %8.1f  %6.1f%%", entry.seconds * 1e3, entry.calls, rate, 100 * rate / machinePeak))
            }
        }
    }
}
