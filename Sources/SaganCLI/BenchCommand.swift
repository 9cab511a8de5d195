import ArgumentParser
import Foundation
import Autodiff
import Kernels

#if canImport(Glibc)
import Glibc
#endif

/// Throughput measurements on this machine. Numbers depend on the machine and its load, so they
/// are printed, never asserted by tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure kernel throughput on this machine.", subcommands: [ConvolutionBench.self])
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
