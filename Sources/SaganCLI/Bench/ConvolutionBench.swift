import ArgumentParser
import Autodiff

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
