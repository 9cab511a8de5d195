import ArgumentParser
import Autodiff
import Evaluation
import Foundation

/// `sagan bench precision-recall`: the time and memory of precision and recall at N.
struct PrecisionRecallBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precision-recall",
        abstract: "Time precision and recall on N real and N fake 2048-dimensional feature vectors.")

    @Option(help: "Vectors per side.") var num = 10_000
    @Option(help: "Also write the vectors to this safetensors file (for Tests/Reference/precision_recall.py).")
    var featuresOut: String?
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        if num < 4 || num > 100_000 { throw ValidationError("--num must be 4 to 100000, got \(num)") }
    }

    func run() throws {
        let timing = try engine.run {
            try PrecisionRecallBenchmark.run(count: num, featuresFile: featuresOut.map(URL.init(fileURLWithPath:)))
        }
        let threads = Engine.threadCount ?? 1
        print(
            String(
                format: "precision and recall, N = %d per side, %d thread%@: %.2f s; peak tensor memory %.0f MiB; "
                    + "precision %.4f, recall %.4f", timing.count, threads, threads == 1 ? "" : "s", timing.seconds,
                Double(timing.peakTensorBytes) / 1_048_576, timing.precision, timing.recall))
    }
}
