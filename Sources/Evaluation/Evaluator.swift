import Datasets
import FileFormats
import Foundation

/// The metrics `Evaluator` computes, in the order they are reported.
public enum Metric: String, CaseIterable, Codable, Sendable {
    case swd, kid, fid

    /// "swd,kid" → [.swd, .kid]; every name must be known and at least one given.
    public static func parseList(_ text: String) throws -> [Metric] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
        let chosen = try names.map { name in
            guard let metric = Metric(rawValue: name) else {
                throw EvaluationError.invalidOption(
                    "\(Setting.metrics): unknown metric \"\(name)\"; choose from swd, kid, fid")
            }
            return metric
        }
        guard !chosen.isEmpty else {
            throw EvaluationError.invalidOption("\(Setting.metrics): name at least one of swd, kid, fid")
        }
        return allCases.filter(chosen.contains)
    }
}

/// The evaluation protocol's settings (docs/evaluation.md): N images per side, the seed of every
/// random choice, and KID's subsets.
public struct EvaluationOptions: Sendable {
    public var metrics: [Metric] = Metric.allCases
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
        try check(!metrics.isEmpty, "\(Setting.metrics): name at least one of swd, kid, fid")
    }
}

/// What an evaluation reports while it runs, for a display to show.
public enum EvaluationEvent: Sendable {
    /// The real set's features came from the cache file.
    case referenceCached(URL)
    /// Features extracted so far; `stage` is "real features" or "fake features".
    case extracting(stage: String, done: Int, total: Int)
}

/// Computes SWD, KID and FID between a real and a fake image set with one protocol, and says what
/// a reader needs to know about the numbers (`notes`).
public struct Evaluator {
    public let options: EvaluationOptions
    /// The Inception network, loaded once when KID or FID is chosen (a training run evaluates often).
    private let model: InceptionV3?

    public init(_ options: EvaluationOptions) throws {
        try options.validate()
        self.options = options
        model =
            options.metrics.contains(.kid) || options.metrics.contains(.fid)
            ? try InceptionWeights.load(from: options.weights ?? InceptionWeights.defaultURL) : nil
    }

    /// Warnings about how far the numbers can be trusted at these settings, and how sets differ.
    public func notes(realChannels: Int?, fakeChannels: Int?) -> [String] {
        var notes: [String] = []
        let chosen = options.metrics
        let num = options.count
        if let a = realChannels, let b = fakeChannels, a != b {
            notes.append(
                "real images have \(a) channel\(a == 1 ? "" : "s") and fake \(b): "
                    + "gray images are replicated to RGB for every metric")
        }
        if chosen.contains(.fid), num < InceptionV3.featureCount {
            notes.append(
                "warning: FID from N = \(num) per side is biased upward (a 2048-feature covariance from fewer "
                    + "than 2048 samples); compare FIDs only at equal N and prefer KID")
        }
        let subsetSize = options.resolvedKIDSubsetSize
        if chosen.contains(.kid), subsetSize < 100 {
            notes.append(
                "warning: KID subsets of \(subsetSize) images have a large spread; its standard deviation says how much"
            )
        }
        if chosen.contains(.swd), num < 1000 {
            notes.append(
                "warning: SWD from N = \(num) per side is noisy (ProGAN used 16,384; 2,000–8,000 tracks training)")
        }
        return notes
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
        if let model {
            let extractor = InceptionFeatureExtractor(model: model, batchSize: options.batchSize)
            let key = ReferenceFeatures.key(contentDigest: try real.contentDigest(), count: num, seed: seed)
            let cache = options.cacheFolder ?? DefaultDataset.cacheFolder
            let reference: ReferenceFeatures
            if let cached = ReferenceFeatures.load(key: key, cache: cache) {
                reference = cached
                progress(.referenceCached(ReferenceFeatures.url(key: key, cache: cache)))
            } else {
                let features = try extractor.features(of: real, indices: realIndices) {
                    progress(.extracting(stage: "real features", done: $0, total: $1))
                }
                reference = try ReferenceFeatures(features: features)
                try reference.save(key: key, cache: cache)
            }
            let fakeFeatures = try extractor.features(of: fake, indices: fakeIndices) {
                progress(.extracting(stage: "fake features", done: $0, total: $1))
            }
            record.featureExtractorSHA256 = InceptionWeights.sha256
            record.resize = InceptionInput.protocolName
            record.referenceKey = key
            if options.metrics.contains(.kid) {
                record.kid = KernelInceptionDistance.compute(
                    real: reference.features, fake: fakeFeatures, dimension: InceptionV3.featureCount,
                    subsets: options.kidSubsets, subsetSize: options.resolvedKIDSubsetSize, seed: seed)
            }
            if options.metrics.contains(.fid) {
                record.fid = try FrechetDistance.distance(
                    reference: reference.statistics, root: reference.covarianceRoot, features: fakeFeatures)
            }
        }
        if options.metrics.contains(.swd) {
            record.swd = try slicedWasserstein(real, realIndices, fake, fakeIndices, fakeSetting: fakeSetting)
        }
        return record
    }

    /// SWD over Laplacian pyramids of square images of one size (seeds: seed+1 and +2 for the
    /// patches of each set, seed+3 for the directions).
    func slicedWasserstein(
        _ real: ImageSet, _ realIndices: [Int], _ fake: ImageSet, _ fakeIndices: [Int], fakeSetting: Setting
    ) throws -> SlicedWasserstein.Result {
        func load(_ set: ImageSet, _ indices: [Int], _ setting: Setting) throws -> [PixelImage] {
            var images: [PixelImage] = []
            for start in stride(from: 0, to: indices.count, by: 256) {
                images += try set.images(Array(indices[start..<min(start + 256, indices.count)]))
            }
            let side = images[0].width
            if side < 16 || images.contains(where: { $0.width != side || $0.height != side }) {
                let odd = images.first { $0.width != side || $0.height != side } ?? images[0]
                throw EvaluationError.unsuitableImages(
                    "\(setting): SWD needs square images of one size, at least 16x16; found \(odd.width)x\(odd.height) "
                        + "(pack the set with `sagan dataset pack --resolution R`)")
            }
            return images
        }
        let realImages = try load(real, realIndices, .real)
        let fakeImages = try load(fake, fakeIndices, fakeSetting)
        let realSide = realImages[0].width
        let fakeSide = fakeImages[0].width
        guard realSide == fakeSide else {
            throw EvaluationError.unsuitableImages(
                "SWD compares images of one resolution: real images are \(realSide)x\(realSide), fake "
                    + "\(fakeSide)x\(fakeSide); "
                    + "pack the real set at \(fakeSide) (sagan dataset pack --resolution \(fakeSide)) or leave swd "
                    + "out of \(Setting.metrics)"
            )
        }
        let resolutions = SlicedWasserstein.resolutions(side: realSide)
        let seed = options.seed
        let a = SlicedWasserstein.descriptors(realImages, seed: seed &+ 1)
        let b = SlicedWasserstein.descriptors(fakeImages, seed: seed &+ 2)
        return SlicedWasserstein.distance(a, b, resolutions: resolutions, seed: seed &+ 3)
    }
}
