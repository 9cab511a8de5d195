import ArgumentParser
import Autodiff
import Evaluation
import Foundation

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
