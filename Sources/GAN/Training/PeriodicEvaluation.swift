import Datasets
import Evaluation
import FileFormats
import Foundation

/// What `sagan train --eval-every` asks for: the generator's quality every `every` steps, measured
/// with `sagan eval`'s protocol, and the best checkpoint by `bestBy` kept.
public struct PeriodicEvaluationOptions: Sendable {
    public var every: Int
    /// The real images (a pack, an image folder or an IDX file); nil: the training set.
    public var realPath: String?
    /// Metrics, N, seed, weights and cache: by default KID alone at N = 2,000.
    public var evaluation = EvaluationOptions()
    /// The metric that picks the best checkpoint (lower is better): the first one asked for.
    public var bestBy = Metric.kid

    public init(every: Int) {
        self.every = every
        evaluation.metrics = [.kid]
        evaluation.count = 2000
    }

    /// Checks the settings; the message names the flag at fault.
    public func validate() throws {
        guard every >= 1 else {
            throw ConfigurationError.invalidArgument(
                .evaluationEvery, "\(Setting.evaluationEvery) must be at least 1, got \(every)")
        }
        guard evaluation.metrics.contains(bestBy) else {
            throw ConfigurationError.invalidArgument(
                .evaluationMetrics,
                "\(Setting.evaluationMetrics): the best checkpoint's metric \(bestBy.name) is not among them")
        }
    }
}

/// The best evaluation so far: its step, the metric that decided and its value, and the protocol
/// (metric, N, seed, real set) it is comparable under. Kept in checkpoints/best.safetensors's
/// metadata and in run.json.
public struct BestEvaluation: Sendable, Equatable, Codable {
    public let step: Int
    public let metric: Metric
    public let value: Double
    public let comparableUnder: String

    /// Metadata keys of checkpoints/best.safetensors.
    static let metadataKey = "best_evaluation"

    /// A file-name part for a protocol: "kid N=500 seed=0 real=…" → "kid-n500-seed0".
    static func tag(_ comparableUnder: String) -> String {
        comparableUnder.split(separator: " ").filter { !$0.hasPrefix("real=") }
            .map { $0.lowercased().replacingOccurrences(of: "=", with: "") }.joined(separator: "-")
    }
}

/// Evaluates a training run's live generator (G-EMA when the run keeps one) against the real set,
/// and says whether each result is the best so far. Real-set features are computed once and cached
/// on disk, as `sagan eval` does; the Inception network is loaded once.
final class PeriodicEvaluator {
    let options: PeriodicEvaluationOptions
    private let evaluator: Evaluator
    private let real: ImageSet
    /// Results are comparable only under the same metric, N, seed and real set.
    let comparableUnder: String
    private(set) var best: BestEvaluation?

    /// Opens the real set (the training set unless `options.realPath`) and loads the network;
    /// `previous` is the best of an earlier part of the run, kept if it was measured the same way.
    init(_ options: PeriodicEvaluationOptions, dataset: PackedDataset, previous: BestEvaluation?) throws {
        try options.validate()
        self.options = options
        evaluator = try Evaluator(options.evaluation)
        let path = options.realPath ?? dataset.url.path
        do { real = try ImageSet.open(path, setting: .evaluationReal) } catch let error as EvaluationError {
            throw EvaluationError.forSetting(.evaluationReal, error)
        }
        let count = options.evaluation.count
        guard real.count >= count else {
            throw EvaluationError.tooFewImages(
                "\(Setting.evaluationReal) \(path) has \(real.count) images; \(Setting.evaluationCount) \(count) needs "
                    + "at least as many "
                    + "(lower \(Setting.evaluationCount))")
        }
        comparableUnder =
            "\(options.bestBy.name) N=\(count) seed=\(options.evaluation.seed) real=\(try real.contentDigest())"
        best = previous?.comparableUnder == comparableUnder ? previous : nil
    }

    /// Whether step `step` is evaluated: every `every` steps and at the last.
    func isDue(step: Int, lastStep: Int) -> Bool { step % options.every == 0 || step == lastStep }

    /// How many evaluations the steps after `step` up to `lastStep` hold.
    func evaluations(after step: Int, lastStep: Int) -> Int {
        guard step < lastStep else { return 0 }
        return lastStep / options.every - step / options.every + (lastStep % options.every == 0 ? 0 : 1)
    }

    /// The record of `trainer`'s generator now, and the new best if this result is one.
    func evaluate(_ trainer: Trainer) throws -> (record: EvaluationRecord, newBest: BestEvaluation?) {
        let sampler = trainer.generatorEMA ?? trainer.generator
        let name = "step \(trainer.step)" + (trainer.generatorEMA == nil ? "" : " (EMA)")
        let fake = sampler.imageSet(name: name, count: options.evaluation.count, digest: name)
        var record = try evaluator.evaluate(real: real, fake: fake)
        record.checkpointStep = trainer.step
        record.toolVersion = ProjectInfo.version
        guard let value = record.value(of: options.bestBy), value.isFinite else { return (record, nil) }
        let lowerIsBetter = options.bestBy.definition.lowerIsBetter
        if let best, lowerIsBetter ? best.value <= value : best.value >= value { return (record, nil) }
        let newBest = BestEvaluation(
            step: trainer.step, metric: options.bestBy, value: value, comparableUnder: comparableUnder)
        best = newBest
        return (record, newBest)
    }
}
