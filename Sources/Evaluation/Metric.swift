import FileFormats
import Foundation

/// One metric of the evaluation protocol: its name, what it is computed from, how, and how its
/// result is written. Each metric is one type in one file (KernelInceptionDistance.swift,
/// FrechetDistance.swift, SlicedWasserstein.swift, PrecisionRecall.swift) and one entry of
/// `Metric.all`; the evaluator, the record, the command line and the studio take the list from there.
public protocol MetricDefinition: Sendable {
    /// What `--metrics` calls it, and the prefix of its JSON keys: "kid".
    var name: String { get }
    /// Its name in charts: "KID".
    var title: String { get }
    /// What it is computed from. Inception runs once per image set, whatever metrics ask for features.
    var input: MetricInput { get }
    /// Whether a lower value is a better generator (true for distances, false for scores).
    var lowerIsBetter: Bool { get }
    /// The JSON key of the value that picks the best checkpoint and that the studio draws.
    var headlineKey: String { get }
    /// Warnings about how far its numbers can be trusted under `options`.
    func notes(_ options: EvaluationOptions) -> [String]
    func compute(_ inputs: MetricInputs) throws -> any MetricValue
    /// Its value in a record read back from JSON, or nil when the record has none.
    func decode(_ entries: RecordEntries) throws -> (any MetricValue)?
}

/// What a metric is computed from.
public enum MetricInput: Sendable {
    /// Inception's 2048 pool3 features of N real and N fake images.
    case inceptionFeatures
    /// The images themselves.
    case pixels
}

/// The inputs of one evaluation, made once for every metric that needs them.
public struct MetricInputs {
    public let options: EvaluationOptions
    /// The real set and the N images chosen from it.
    public let real: ImageSet
    public let realIndices: [Int]
    /// The fake set, its first N images, and the setting that named it (for messages).
    public let fake: ImageSet
    public let fakeIndices: [Int]
    public let fakeSetting: Setting
    /// The real images' Inception features with their statistics, when a metric needs features.
    public let realFeatures: ReferenceFeatures?
    /// The fake images' Inception features, N × 2048 row-major, when a metric needs features.
    public let fakeFeatures: [Float]?
}

/// A metric's result: its JSON entries, TensorBoard scalars and one-line summary.
public protocol MetricValue: Sendable {
    /// The number that decides which checkpoint is best (see `MetricDefinition.lowerIsBetter`).
    var headline: Double { get }
    /// The record's JSON entries, by key.
    var entries: [(key: String, value: RecordEntry)] { get }
    /// TensorBoard scalars (tag, value).
    var scalars: [(tag: String, value: Float)] { get }
    /// "KID 0.01234 ± 0.00100": for progress lines.
    var summary: String { get }
    /// The lines `sagan eval` prints, indented.
    var report: [String] { get }
    func isEqual(to other: any MetricValue) -> Bool
}

extension MetricValue where Self: Equatable {
    public func isEqual(to other: any MetricValue) -> Bool { (other as? Self) == self }
}

/// One JSON value of a record.
public enum RecordEntry: Sendable, Equatable {
    case number(Double)
    case text(String)
}

/// A record's JSON entries, for a metric to read its own back.
public struct RecordEntries {
    let keys: [String]
    let number: (String) throws -> Double?
    let text: (String) throws -> String?

    public var allKeys: [String] { keys }
    public func number(_ key: String) throws -> Double? { try number(key) }
    public func text(_ key: String) throws -> String? { try text(key) }
}

/// A metric, compared and written by name.
public struct Metric: Hashable, Sendable, Codable, CustomStringConvertible {
    public let definition: any MetricDefinition

    public init(_ definition: any MetricDefinition) { self.definition = definition }

    public var name: String { definition.name }
    public var description: String { name }

    public static func == (a: Metric, b: Metric) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// Every metric, in the order records report them: the registry.
    public static let all: [Metric] = [.fid, .kid, .swd, .precisionRecall]

    /// The metric called `name`, if there is one.
    public static func named(_ name: String) -> Metric? { all.first { $0.name == name } }

    /// "swd,kid" → [.swd, .kid] in report order; every name must be known and at least one given.
    public static func parseList(_ text: String) throws -> [Metric] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
        let chosen = try names.map { name in
            guard let metric = named(name) else {
                throw EvaluationError.invalidOption(
                    "\(Setting.metrics): unknown metric \"\(name)\"; choose from \(list)")
            }
            return metric
        }
        guard !chosen.isEmpty else {
            throw EvaluationError.invalidOption("\(Setting.metrics): name at least one of \(list)")
        }
        return all.filter(chosen.contains)
    }

    /// "swd, kid, fid, pr": the names, for messages and help.
    public static var list: String { all.map(\.name).joined(separator: ", ") }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let metric = Metric.named(name) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "unknown metric \"\(name)\""))
        }
        self = metric
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
