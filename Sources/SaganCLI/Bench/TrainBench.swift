import ArgumentParser
import Collectives
import Foundation
import GAN

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
