import ArgumentParser
import Autodiff
import Collectives
import Datasets
import Evaluation
import Foundation
import GAN

/// Throughput measurements on this machine. Numbers depend on the machine and its load, so they
/// are printed, never asserted by tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure throughput on this machine.",
        subcommands: [
            TrainBench.self, ConvolutionBench.self, AttentionBench.self, InceptionBench.self, LoaderBench.self,
            AllreduceBench.self, PrecisionRecallBench.self,
        ],
        defaultSubcommand: TrainBench.self)
}

/// Times one convolution's forward, backward-data and backward-weights kernels.
struct ConvolutionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract:
            "GFLOP/s of a convolution's forward and backward kernels (default: the blog model's 64→128 4x4 stride-2 "
            + "layer)."
    )

    @Option(help: "Batch size.") var batch = 16
    @Option(help: "Input channels.") var inChannels = 64
    @Option(help: "Output channels.") var outChannels = 128
    @Option(help: "Input height and width.") var size = 64
    @Option(help: "Kernel height and width.") var kernel = 4
    @Option(help: "Stride.") var stride = 2
    @Option(help: "Zero padding on each side.") var padding = 1
    @Option(help: "Timed repetitions of each kernel (after one warm-up).") var iterations = 20
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        let sizes = [
            ("--batch", batch), ("--in-channels", inChannels), ("--out-channels", outChannels),
            ("--size", size), ("--kernel", kernel), ("--stride", stride), ("--iterations", iterations),
        ]
        for (name, value) in sizes where value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
    }

    func run() throws {
        let result = try engine.run {
            try KernelBenchmark.convolution(
                batch: batch, inChannels: inChannels, outChannels: outChannels, size: size,
                kernel: kernel, stride: stride, padding: padding, iterations: iterations)
        }
        print(
            "\(result.backend): \(result.shape), \(String(format: "%.2f", result.flopsPerPass / 1e9)) GFLOP per pass, "
                + "threads \(result.threads.map(String.init) ?? "?")")
        printPasses(result.passes)
    }
}

/// One line per pass: median and best times and GFLOP/s.
func printPasses(_ passes: [PassTiming]) {
    let width = passes.map(\.name.count).max() ?? 0
    for pass in passes {
        print(
            "  " + pass.name.padding(toLength: width, withPad: " ", startingAt: 0)
                + String(
                    format: "  median %8.3f ms  min %8.3f ms  %7.1f GFLOP/s (median)  %7.1f GFLOP/s (best)",
                    pass.medianSeconds * 1e3, pass.bestSeconds * 1e3, pass.medianGFLOPS, pass.bestGFLOPS))
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
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        for (name, value) in [("--batch", batch), ("--size", size), ("--iterations", iterations)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if channels < 8 { throw ValidationError("--channels must be at least 8, got \(channels)") }
    }

    func run() throws {
        let result = try engine.run {
            try KernelBenchmark.attention(batch: batch, channels: channels, size: size, iterations: iterations)
        }
        print("\(result.backend): \(result.shape), threads \(result.threads.map(String.init) ?? "?")")
        printPasses(result.passes)
    }
}

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

/// Full training iterations (D step + G step) of a preset on synthetic data.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "Time full training iterations of a preset on synthetic data: ms/iteration, images/s, GFLOP/s, % of peak, "
            + "peak memory."
    )

    @Option(help: "Model preset.") var preset: ModelPreset = .blog128
    @Option(help: "Images per batch.") var batch = 16
    @Option(help: "Timed iterations (after the warm-up).") var iters = 5
    @Option(help: "Warm-up iterations (primitive creation, allocation).") var warmup = 2
    @Option(help: "Image channels.") var channels = 3
    @Option(help: "The machine's peak in GFLOP/s (default: measured with an FMA loop).") var peak: Double?
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Print time per kernel.") var profile = false
    @OptionGroup var engine: EngineOptions

    func run() throws {
        // Under mpirun: every rank takes its slice of the batch; rank 0 prints.
        let group = try MPIProcessGroup.joinIfLaunched()
        defer { group?.finalize() }
        var options = TrainingBenchmarkOptions()
        options.group = group.flatMap { $0.size > 1 ? $0 : nil }
        options.preset = preset
        options.batchSize = batch
        options.imageChannels = channels
        options.iterations = iters
        options.warmup = warmup
        options.peakGFLOPS = peak
        options.profile = profile
        let result: TrainingBenchmarkResult
        do { result = try engine.run { try TrainingBenchmark.run(options) } } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        if (group?.rank ?? 0) != 0 { return }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            let threads =
                "\(result.threads) thread\(result.threads == 1 ? "" : "s")"
                + (result.ranks > 1 ? " × \(result.ranks) ranks" : "")
            print(
                "\(result.preset) batch \(result.batch), \(threads), backend \(result.backend) in \(result.precision): "
                    + String(format: "%.1f GFLOP per iteration", result.gflopPerIteration))
            printInstructionSets(result.backend)
            printImplementations(result.backend)
            let peakSource = peak == nil ? "measured by an \(result.peakSource) FMA loop" : "given"
            // Under ranks the peaks are per rank; the job's is their sum.
            let ranks = result.ranks > 1 ? "\(result.ranks) ranks × \(Int(result.peakGFLOPS.rounded())), " : ""
            let peaks = Double(result.ranks)
            print(
                String(
                    format: "  %.1f ms per iteration (median of %d; best %.1f ms), %.1f images/s, "
                        + "%.1f GFLOP/s = %.1f%% of peak %.0f GFLOP/s ", result.msMedian, result.iterations,
                    result.msMin,
                    result.imagesPerSecond, result.gflops, result.percentOfPeak, result.peakGFLOPS * peaks)
                    + "(\(ranks)\(peakSource))"
                    + (result.bf16PeakGFLOPS.map { bf16 in
                        String(
                            format: ", %.1f%% of the bf16 peak %.0f GFLOP/s (a vdpbf16ps loop)",
                            result.percentOfBF16Peak ?? 0, bf16 * peaks)
                    } ?? "") + "; peak RSS \(result.peakRSSMiB) MiB"
                    + (result.ranks > 1
                        ? String(
                            format: " per rank; %.1f ms in %d collectives", result.msCollectives,
                            result.collectivesPerIteration) : ""))
        }
        if let profile = result.profile {
            printProfile(
                profile, over: "\(iters) iterations", seconds: result.iterationSeconds.reduce(0, +), repeats: iters,
                peakGFLOPS: result.peakGFLOPS)
        }
    }
}

/// Time per kernel and per convolution shape, with the share of the machine's peak each shape reached.
func printProfile(_ profile: EngineProfile, over what: String, seconds: Double, repeats: Int, peakGFLOPS: Double) {
    let total = profile.kernels.reduce(0) { $0 + $1.seconds }
    let mebibyte = Double(1 << 20)
    print(
        "kernel time over \(what) (\(String(format: "%.0f", total * 1e3)) ms in kernels, "
            + "\(String(format: "%.0f", (seconds - total) * 1e3)) ms elsewhere); tensor memory: at most "
            + "\(String(format: "%.0f", Double(profile.peakLiveBytes) / mebibyte)) MiB alive at once:")
    print("  kernel                          time   share    calls   allocated per repeat")
    for entry in profile.kernels.prefix(25) {
        print(
            "  " + entry.kernel.padding(toLength: 28, withPad: " ", startingAt: 0)
                + String(
                    format: "%8.1f ms  %5.1f%%  %6d  %9.1f MiB", entry.seconds * 1e3,
                    100 * entry.seconds / max(total, 1e-9),
                    entry.calls, Double(entry.allocatedBytes) / mebibyte / Double(repeats)))
    }
    print("convolutions by shape (in→out channels, input size, kernel, stride, batch):")
    print("  kernel and shape                                          time   calls   GFLOP/s   of peak")
    for entry in profile.convolutions.prefix(25) {
        let rate = entry.flops / entry.seconds / 1e9
        print(
            "  " + entry.kernel.padding(toLength: 52, withPad: " ", startingAt: 0)
                + String(
                    format: "%8.1f ms  %6d  %8.1f  %6.1f%%", entry.seconds * 1e3, entry.calls, rate,
                    100 * rate / peakGFLOPS))
    }
}

/// Images per second through the FID network: the cost of KID and FID per image.
struct InceptionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inception",
        abstract: "Images/s and GFLOP/s of the InceptionV3 that KID and FID use (per image, resize excluded).")

    @Option(help: "Images per batch (sagan eval's default).") var batch = 25
    @Option(help: "Timed batches (after one warm-up).") var iterations = 4
    @Option(help: "The machine's peak in GFLOP/s (default: measured with an FMA loop).") var peak: Double?
    @Flag(help: "Print time per kernel.") var profile = false
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        for (name, value) in [("--batch", batch), ("--iterations", iterations)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
    }

    func run() throws {
        let (result, peakGFLOPS) = try engine.run {
            let peakGFLOPS = peak ?? Engine.measurePeakGFLOPS(threads: Engine.threadCount ?? 1)
            return (try InceptionBenchmark.run(batch: batch, iterations: iterations, profile: profile), peakGFLOPS)
        }
        let weights = result.trainedWeights ? "FID weights" : "random weights (no converted FID weights here)"
        print(
            "InceptionV3 batch \(result.batch), \(result.threads) threads, backend \(result.backend), \(weights): "
                + String(format: "%.2f GFLOP per image", result.flopsPerImage / 1e9))
        printImplementations(result.backend)
        print(
            String(
                format: "  %.1f ms per batch (median of %d), %.1f images/s (%.1f ms per image), %.1f GFLOP/s = "
                    + "%.1f%% of peak %.0f GFLOP/s", result.medianSeconds * 1e3, result.batchSeconds.count,
                result.imagesPerSecond, 1e3 / result.imagesPerSecond, result.gflops,
                100 * result.gflops / peakGFLOPS, peakGFLOPS))
        if let profile = result.profile {
            printProfile(
                profile, over: "\(iterations) batches", seconds: result.batchSeconds.reduce(0, +),
                repeats: iterations, peakGFLOPS: peakGFLOPS)
        }
    }
}

/// The implementations `backend` chose for the convolutions and products run so far.
func printImplementations(_ backend: String) {
    let kinds = Engine.kernelImplementations(of: BackendID(rawValue: backend)).filter {
        $0.key.hasPrefix("convolution") || $0.key.hasPrefix("attention") || $0.key == "matmul"
    }
    for (kind, implementations) in kinds.sorted(by: { $0.key < $1.key }) {
        let chosen = implementations.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }
        print("  \(kind): \(chosen.joined(separator: ", "))")
    }
}

/// The instruction set of `backend`'s kernels here and the CPU's bf16 instructions (what bf16 training
/// would use).
func printInstructionSets(_ backend: String) {
    let bf16 = Engine.bf16Instructions
    let kernels = Engine.kernelInstructionSet(of: BackendID(rawValue: backend)) ?? "plain Swift, for any CPU"
    print(
        "  \(backend) kernels: \(kernels); bf16 instructions: "
            + (bf16.isEmpty ? "none (bf16 would be emulated)" : bf16.joined(separator: ", ")))
}

/// Allreduce time across the ranks of `mpirun -np N sagan bench allreduce`: the communication cost
/// of data-parallel training, from one float up to a preset's gradients.
struct AllreduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract:
            "Time allreduce (sum of fp32 buffers) across the ranks of an MPI job, up to the size of a preset's G and D "
            + "gradients.")

    @Option(help: "The preset whose G and D parameter count is the largest buffer.") var preset: ModelPreset = .blog128
    @Option(help: "Timed allreduces per size (after two warm-up ones).") var iterations = 20
    @Flag(help: "Print one JSON object per size instead of text.") var json = false

    func validate() throws {
        if iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
    }

    func run() throws {
        guard let group = try MPIProcessGroup.joinIfLaunched() else {
            throw ValidationError(
                "sagan bench allreduce runs under an MPI launcher: mpirun -np 2 sagan bench allreduce")
        }
        defer { group.finalize() }
        let config = try TrainConfig.preset(preset, resolution: preset.defaultResolution, imageChannels: 3)
        var random = RandomGenerator(seed: 0)
        let parameters =
            Generator(config: config.model, generator: &random).parameterCount
            + Discriminator(config: config.model, generator: &random).parameterCount
        let sizes = [1, 256, 16_384, 262_144, 1_048_576, parameters].filter { $0 <= parameters }
        let timings = sizes.map { AllreduceBenchmark.run(group, floats: $0, iterations: iterations) }
        guard group.rank == 0 else { return }
        if !json { print("allreduce (sum, fp32) on \(group.size) ranks; the last size is \(preset.rawValue)'s G + D:") }
        for timing in timings {
            if json {
                print(String(decoding: try JSONEncoder().encode(timing), as: UTF8.self))
                continue
            }
            print(
                String(
                    format: "  %10d floats %9.3f MB  median %9.3f ms  best %9.3f ms  %7.2f GB/s  bus %7.2f GB/s",
                    timing.floats, Double(timing.bytes) / 1e6, timing.medianSeconds * 1e3, timing.bestSeconds * 1e3,
                    timing.algorithmBandwidth / 1e9, timing.busBandwidth / 1e9))
        }
    }
}
