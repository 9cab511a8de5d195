import Foundation

/// One evaluation's numbers with the protocol that produced them: what `sagan eval --json` prints
/// and what a run's metrics.jsonl holds. Keys are snake_case; SWD has one key per pyramid level.
public struct EvaluationRecord: Sendable, Equatable {
    /// The real set as the user named it.
    public var real: String
    /// The fake set: a path, or a checkpoint (with " (EMA)" for its moving average).
    public var fake: String
    /// Images per side.
    public var count: Int
    public var seed: UInt64
    /// The training step of the checkpoint evaluated, if known.
    public var checkpointStep: Int?
    public var toolVersion: String?
    /// SHA-256 of the Inception weights, the resize protocol and the reference cache key (KID, FID).
    public var featureExtractorSHA256: String?
    public var resize: String?
    public var referenceKey: String?
    public var kid: KernelInceptionDistance.Result?
    public var fid: Double?
    public var swd: SlicedWasserstein.Result?
    /// What a reader needs to know about these numbers (small N, mixed channels).
    public var notes: [String] = []

    public init(real: String, fake: String, count: Int, seed: UInt64) {
        self.real = real
        self.fake = fake
        self.count = count
        self.seed = seed
    }

    /// One number per metric, lower is better for each: KID's mean, FID, SWD's average over levels.
    public func value(of metric: Metric) -> Double? {
        switch metric {
        case .kid: return kid?.mean
        case .fid: return fid
        case .swd: return swd?.average
        }
    }

    /// The values as TensorBoard scalars: Metrics/KID, Metrics/FID, Metrics/SWDx1e3_<level> and _avg.
    public var scalars: [(tag: String, value: Float)] {
        var scalars: [(tag: String, value: Float)] = []
        if let kid { scalars.append(("Metrics/KID", Float(kid.mean))) }
        if let fid { scalars.append(("Metrics/FID", Float(fid))) }
        if let swd {
            scalars += swd.levels.map { ("Metrics/SWDx1e3_\($0.resolution)", Float($0.value)) }
            scalars.append(("Metrics/SWDx1e3_avg", Float(swd.average)))
        }
        return scalars
    }

    /// The record as one line of JSON (sorted keys, slashes unescaped).
    public func jsonLine() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

extension EvaluationRecord: Codable {
    /// Keys are snake_case and SWD's are made from its levels, so they are spelled out here.
    struct Key: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(real, forKey: Key("real"))
        try container.encode(fake, forKey: Key("fake"))
        try container.encode(count, forKey: Key("n_real"))
        try container.encode(count, forKey: Key("n_fake"))
        try container.encode(seed, forKey: Key("seed"))
        try container.encodeIfPresent(checkpointStep, forKey: Key("checkpoint_step"))
        try container.encodeIfPresent(toolVersion, forKey: Key("tool_version"))
        try container.encodeIfPresent(featureExtractorSHA256, forKey: Key("feature_extractor_sha256"))
        try container.encodeIfPresent(resize, forKey: Key("resize"))
        try container.encodeIfPresent(referenceKey, forKey: Key("reference_key"))
        if let kid {
            try container.encode(kid.mean, forKey: Key("kid"))
            try container.encode(kid.standardDeviation, forKey: Key("kid_std"))
            try container.encode("\(kid.subsets) x \(kid.subsetSize)", forKey: Key("kid_subsets"))
        }
        try container.encodeIfPresent(fid, forKey: Key("fid"))
        if let swd {
            for level in swd.levels { try container.encode(level.value, forKey: Key("swd_x1e3_\(level.resolution)")) }
            try container.encode(swd.average, forKey: Key("swd_x1e3_avg"))
        }
        if !notes.isEmpty { try container.encode(notes, forKey: Key("notes")) }
    }

    /// Reads a record back; unknown keys (a run log's "kind" and "step") are ignored.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.init(
            real: try container.decode(String.self, forKey: Key("real")),
            fake: try container.decode(String.self, forKey: Key("fake")),
            count: try container.decode(Int.self, forKey: Key("n_real")),
            seed: try container.decode(UInt64.self, forKey: Key("seed")))
        checkpointStep = try container.decodeIfPresent(Int.self, forKey: Key("checkpoint_step"))
        toolVersion = try container.decodeIfPresent(String.self, forKey: Key("tool_version"))
        featureExtractorSHA256 = try container.decodeIfPresent(String.self, forKey: Key("feature_extractor_sha256"))
        resize = try container.decodeIfPresent(String.self, forKey: Key("resize"))
        referenceKey = try container.decodeIfPresent(String.self, forKey: Key("reference_key"))
        if let mean = try container.decodeIfPresent(Double.self, forKey: Key("kid")) {
            let subsets = try container.decode(String.self, forKey: Key("kid_subsets"))
            let parts = subsets.split(separator: "x").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2 else {
                throw DecodingError.dataCorruptedError(
                    forKey: Key("kid_subsets"), in: container,
                    debugDescription: "\"\(subsets)\" is not \"SUBSETS x SIZE\"")
            }
            kid = KernelInceptionDistance.Result(
                mean: mean, standardDeviation: try container.decode(Double.self, forKey: Key("kid_std")),
                subsets: parts[0],
                subsetSize: parts[1])
        }
        fid = try container.decodeIfPresent(Double.self, forKey: Key("fid"))
        let levels = try container.allKeys.compactMap { key -> (resolution: Int, value: Double)? in
            guard key.stringValue.hasPrefix("swd_x1e3_"), let resolution = Int(key.stringValue.dropFirst(9)) else {
                return nil
            }
            return (resolution, try container.decode(Double.self, forKey: key))
        }
        if !levels.isEmpty { swd = SlicedWasserstein.Result(levels: levels.sorted { $0.resolution > $1.resolution }) }
        notes = try container.decodeIfPresent([String].self, forKey: Key("notes")) ?? []
    }
}
