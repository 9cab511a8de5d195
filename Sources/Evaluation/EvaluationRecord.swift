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
    /// Each metric's result (KID, FID, SWD, …; each metric's file adds a typed accessor).
    public var values: [Metric: any MetricValue] = [:]
    /// What a reader needs to know about these numbers (small N, mixed channels).
    public var notes: [String] = []

    public init(real: String, fake: String, count: Int, seed: UInt64) {
        self.real = real
        self.fake = fake
        self.count = count
        self.seed = seed
    }

    /// The number that decides the best checkpoint, as the metric states it (lower is better for
    /// distances, higher for scores: `Metric.definition.lowerIsBetter`).
    public func value(of metric: Metric) -> Double? { values[metric]?.headline }

    /// The results in report order.
    public var orderedValues: [(metric: Metric, value: any MetricValue)] {
        Metric.all.compactMap { metric in values[metric].map { (metric, $0) } }
    }

    /// The values as TensorBoard scalars: Metrics/KID, Metrics/FID, Metrics/SWDx1e3_<level> and _avg, ….
    public var scalars: [(tag: String, value: Float)] { orderedValues.flatMap(\.value.scalars) }

    public static func == (a: EvaluationRecord, b: EvaluationRecord) -> Bool {
        guard a.real == b.real, a.fake == b.fake, a.count == b.count, a.seed == b.seed,
            a.checkpointStep == b.checkpointStep, a.toolVersion == b.toolVersion,
            a.featureExtractorSHA256 == b.featureExtractorSHA256, a.resize == b.resize,
            a.referenceKey == b.referenceKey, a.notes == b.notes, Set(a.values.keys) == Set(b.values.keys)
        else { return false }
        return a.values.allSatisfy { metric, value in b.values[metric].map(value.isEqual(to:)) ?? false }
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
        for (_, value) in orderedValues {
            for (key, entry) in value.entries {
                switch entry {
                case .number(let number): try container.encode(number, forKey: Key(key))
                case .text(let text): try container.encode(text, forKey: Key(key))
                }
            }
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
        let entries = RecordEntries(
            keys: container.allKeys.map(\.stringValue),
            number: { try container.decodeIfPresent(Double.self, forKey: Key($0)) },
            text: { try container.decodeIfPresent(String.self, forKey: Key($0)) })
        for metric in Metric.all {
            if let value = try metric.definition.decode(entries) { values[metric] = value }
        }
        notes = try container.decodeIfPresent([String].self, forKey: Key("notes")) ?? []
    }
}
