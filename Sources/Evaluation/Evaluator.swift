import Datasets
import FileFormats
import Foundation

/// The evaluation protocol's settings (docs/evaluation.md): N images per side, the seed of every
/// random choice, and KID's subsets.
public struct EvaluationOptions: Sendable {
    /// The metrics to compute (default: SWD, KID and FID).
    public var metrics: [Metric] = [.swd, .kid, .fid]
    /// Images per side (real images: a seeded random subset when the set is larger).
    public var count = 1000
    public var kidSubsets = 50
    /// nil: half of N, at least 2 and at most 1000.
    public var kidSubsetSize: Int?
    /// Seeds the real-image selection (seed), the SWD patches and directions (seed+1, +2, +3) and
    /// the KID subsets (seed).
    public var seed: UInt64 = 0
    /// Images per Inception batch.
    public var batchSize = 25
    /// The converted Inception weights; nil: the cache folder.
    public var weights: URL?
    /// Where real-image features are cached; nil: the cache folder.
    public var cacheFolder: URL?

    public init() {}

    /// The KID subset size these options give.
    public var resolvedKIDSubsetSize: Int { kidSubsetSize ?? min(max(count / 2, 2), 1000) }

    /// Checks every setting; the message names the flag at fault.
    public func validate() throws {
        func check(_ condition: Bool, _ message: String) throws {
            if !condition { throw EvaluationError.invalidOption(message) }
        }
        try check(count >= 2, "\(Setting.count) must be at least 2, got \(count)")
        try check(batchSize >= 1, "\(Setting.batchSize) must be at least 1, got \(batchSize)")
        try check(kidSubsets >= 1, "\(Setting.kidSubsets) must be at least 1, got \(kidSubsets)")
        if let kidSubsetSize {
            try check(
                (2...count).contains(kidSubsetSize),
                "\(Setting.kidSubsetSize) must be between 2 and \(Setting.count) (\(count)), got \(kidSubsetSize)")
        }
        try check(!metrics.isEmpty, "\(Setting.metrics): name at least one of \(Metric.list)")
    }
}

/// What an evaluation reports while it runs, for a display to show.
public enum EvaluationEvent: Sendable {
    /// The real set's features came from the cache file.
    case referenceCached(URL)
    /// Features extracted so far; `stage` is "real features" or "fake features".
    case extracting(stage: String, done: Int, total: Int)
}

/// Computes the chosen metrics between a real and a fake image set with one protocol, and says what
/// a reader needs to know about the numbers (`notes`).
public struct Evaluator {
    public let options: EvaluationOptions
    /// The Inception network, loaded once when a metric needs its features (a training run evaluates often).
    private let model: InceptionV3?

    public init(_ options: EvaluationOptions) throws {
        try options.validate()
        self.options = options
        model =
            options.metrics.contains { $0.definition.input == .inceptionFeatures }
            ? try InceptionWeights.load(from: options.weights ?? InceptionWeights.defaultURL) : nil
    }

    /// Warnings about how far the numbers can be trusted at these settings, and how sets differ.
    public func notes(realChannels: Int?, fakeChannels: Int?) -> [String] {
        var notes: [String] = []
        if let a = realChannels, let b = fakeChannels, a != b {
            notes.append(
                "real images have \(a) channel\(a == 1 ? "" : "s") and fake \(b): "
                    + "gray images are replicated to RGB for every metric")
        }
        return notes + Metric.all.filter(options.metrics.contains).flatMap { $0.definition.notes(options) }
    }

    /// Evaluates `fake` against `real`. Real-set features are cached by content digest, N and seed.
    /// `real` and `fake` name the sets in the record; `fakeSetting` is where the fake set came from, for errors.
    public func evaluate(
        real: ImageSet, fake: ImageSet, fakeSetting: Setting = .fake, progress: (EvaluationEvent) -> Void = { _ in }
    ) throws -> EvaluationRecord {
        let num = options.count
        let seed = options.seed
        guard real.count >= num else {
            throw EvaluationError.tooFewImages(
                "\(Setting.real) \(real.name) has \(real.count) images; \(Setting.count) \(num) needs at least as many "
                    + "(lower \(Setting.count))"
            )
        }
        guard fake.count >= num else {
            throw EvaluationError.tooFewImages(
                "\(fakeSetting) \(fake.name) has \(fake.count) images; \(Setting.count) \(num) needs at least as many "
                    + "(lower \(Setting.count))"
            )
        }
        var record = EvaluationRecord(real: real.name, fake: fake.name, count: num, seed: seed)
        record.notes = notes(realChannels: real.channels, fakeChannels: fake.channels)
        let realIndices = real.selection(num, seed: seed)
        let fakeIndices = Array(0..<num)
        var realFeatures: ReferenceFeatures?
        var fakeFeatures: [Float]?
        if let model {
            let extractor = InceptionFeatureExtractor(model: model, batchSize: options.batchSize)
            let key = ReferenceFeatures.key(contentDigest: try real.contentDigest(), count: num, seed: seed)
            let cache = options.cacheFolder ?? DefaultDataset.cacheFolder
            if let cached = ReferenceFeatures.load(key: key, cache: cache) {
                realFeatures = cached
                progress(.referenceCached(ReferenceFeatures.url(key: key, cache: cache)))
            } else {
                let features = try extractor.features(of: real, indices: realIndices) {
                    progress(.extracting(stage: "real features", done: $0, total: $1))
                }
                let reference = try ReferenceFeatures(features: features)
                try reference.save(key: key, cache: cache)
                realFeatures = reference
            }
            fakeFeatures = try extractor.features(of: fake, indices: fakeIndices) {
                progress(.extracting(stage: "fake features", done: $0, total: $1))
            }
            record.featureExtractorSHA256 = InceptionWeights.sha256
            record.resize = InceptionInput.protocolName
            record.referenceKey = key
        }
        let inputs = MetricInputs(
            options: options, real: real, realIndices: realIndices, fake: fake, fakeIndices: fakeIndices,
            fakeSetting: fakeSetting, realFeatures: realFeatures, fakeFeatures: fakeFeatures)
        for metric in Metric.all where options.metrics.contains(metric) {
            record.values[metric] = try metric.definition.compute(inputs)
        }
        return record
    }
}
