import ArgumentParser
import Autodiff

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
