import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation

/// The images an evaluation compares with the real set.
public enum FakeImages {
    /// A generator's images for seeds 0..<N, from the checkpoint or export at `path`.
    case generator(LoadedGenerator, path: String, ema: Bool)
    /// An image set on disk: a pack, an image folder or an IDX file.
    case set(path: String)
}

/// `sagan eval`'s job: open both sets, run the `Evaluator`, and file the record with the run the
/// checkpoint belongs to (its metrics.jsonl and TensorBoard events).
public struct GeneratorEvaluation {
    public let evaluator: Evaluator
    public let real: ImageSet
    public let fake: ImageSet
    /// The fake set as records name it: the path, with " (EMA)" for a moving average.
    public let fakeName: String
    public let checkpointStep: Int?
    /// The run folder the record is appended to, if the checkpoint sits in one.
    public let runFolder: URL?
    private let fakeSetting: Setting

    public init(real realPath: String, fake: FakeImages, options: EvaluationOptions) throws {
        evaluator = try Evaluator(options)
        do { real = try ImageSet.open(realPath, setting: .real) } catch let error as EvaluationError {
            throw EvaluationError.forSetting(.real, error)
        }
        guard real.count >= options.count else {
            throw EvaluationError.tooFewImages(
                "\(Setting.real) \(realPath) has \(real.count) images; \(Setting.count) \(options.count) needs at "
                    + "least as many (lower "
                    + "\(Setting.count))"
            )
        }
        switch fake {
        case .generator(let loaded, let path, let ema):
            self.fake = loaded.imageSet(name: path, count: options.count)
            fakeName = path + (ema ? " (EMA)" : "")
            checkpointStep = loaded.metadata["step"].flatMap(Int.init)
            runFolder = RunDirectory.containing(checkpoint: URL(fileURLWithPath: path))
            fakeSetting = .checkpoint
        case .set(let path):
            do { self.fake = try ImageSet.open(path, setting: .fake) } catch let error as EvaluationError {
                throw EvaluationError.forSetting(.fake, error)
            }
            fakeName = path
            checkpointStep = nil
            runFolder = nil
            fakeSetting = .fake
        }
    }

    /// What a reader needs to know before the numbers (see `Evaluator.notes`).
    public var notes: [String] { evaluator.notes(realChannels: real.channels, fakeChannels: fake.channels) }

    /// Evaluates, and appends the record to the run folder when there is one.
    public func run(progress: (EvaluationEvent) -> Void = { _ in }) throws -> EvaluationRecord {
        var record = try evaluator.evaluate(real: real, fake: fake, fakeSetting: fakeSetting, progress: progress)
        record.fake = fakeName
        record.checkpointStep = checkpointStep
        record.toolVersion = ProjectInfo.version
        if let runFolder {
            try RunDirectory(runFolder).logEvaluation(step: checkpointStep ?? 0, record: record, source: "sagan eval")
        }
        return record
    }
}

extension LoadedGenerator {
    /// The generator's images for seeds 0..<`count` (classes seed mod K for conditional models),
    /// quantised to 8 bits as saved images would be.
    public func imageSet(name: String, count: Int) -> ImageSet {
        generator.imageSet(name: name, count: count, digest: metadata["created"] ?? name)
    }
}

extension Generator {
    /// Images for seeds 0..<`count` (classes seed mod K for conditional models), quantised to 8
    /// bits, made in evaluation mode (BN running statistics, no power iteration) and handing the
    /// mode back after each batch: a training run evaluates its live G without changing it, and
    /// gets the images `sagan eval` gets from the checkpoint of that step.
    public func imageSet(name: String, count: Int, digest: String) -> ImageSet {
        let (classes, latentSize) = (config.classCount, config.latentSize)
        return ImageSet(
            name: name, count: count, side: config.resolution, channels: config.imageChannels,
            fetch: { seeds in
                let wasTraining = self.isTraining
                self.setTraining(false)
                defer { self.setTraining(wasTraining) }
                let codes = seeds.flatMap { LatentCodes.z(seed: $0, size: latentSize) }
                let z = Tensor(shape: [seeds.count, latentSize], scalars: codes)  // (B, latent)
                let images = noGrad { self(z, labels: classes > 0 ? seeds.map { $0 % classes } : nil) }  // (B, C, R, R)
                return seeds.indices.map { SampleGrid.image(images.sliced(alongAxis: 0, $0..<($0 + 1)), gap: 0) }
            }, digest: { digest })
    }
}
