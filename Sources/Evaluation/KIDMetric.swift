import Foundation

/// KID as a metric of the protocol: the cubic-kernel MMD² of Inception features over random subsets.
struct KIDMetric: MetricDefinition {
    let name = "kid"
    let title = "KID"
    let input = MetricInput.inceptionFeatures
    let lowerIsBetter = true
    let headlineKey = "kid"

    func notes(_ options: EvaluationOptions) -> [String] {
        let subsetSize = options.resolvedKIDSubsetSize
        guard subsetSize < 100 else { return [] }
        return [
            "warning: KID subsets of \(subsetSize) images have a large spread; its standard deviation says how much"
        ]
    }

    func compute(_ inputs: MetricInputs) throws -> any MetricValue {
        KernelInceptionDistance.compute(
            real: inputs.realFeatures!.features, fake: inputs.fakeFeatures!, dimension: InceptionV3.featureCount,
            subsets: inputs.options.kidSubsets, subsetSize: inputs.options.resolvedKIDSubsetSize,
            seed: inputs.options.seed)
    }

    func decode(_ entries: RecordEntries) throws -> (any MetricValue)? {
        guard let mean = try entries.number("kid") else { return nil }
        let subsets = try entries.text("kid_subsets") ?? ""
        let parts = subsets.split(separator: "x").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let deviation = try entries.number("kid_std") else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: [], debugDescription: "kid_subsets \"\(subsets)\" is not \"SUBSETS x SIZE\""))
        }
        return KernelInceptionDistance.Result(
            mean: mean, standardDeviation: deviation, subsets: parts[0], subsetSize: parts[1])
    }
}

extension KernelInceptionDistance.Result: MetricValue {
    public var headline: Double { mean }
    public var entries: [(key: String, value: RecordEntry)] {
        [
            ("kid", .number(mean)), ("kid_std", .number(standardDeviation)),
            ("kid_subsets", .text("\(subsets) x \(subsetSize)")),
        ]
    }
    public var scalars: [(tag: String, value: Float)] { [("Metrics/KID", Float(mean))] }
    public var summary: String { String(format: "KID %.5f ± %.5f", mean, standardDeviation) }
    public var report: [String] {
        [String(format: "  KID  %.5f ± %.5f (%d subsets of %d)", mean, standardDeviation, subsets, subsetSize)]
    }
}

extension Metric {
    /// Kernel Inception Distance (docs/evaluation.md §2).
    public static let kid = Metric(KIDMetric())
}

extension EvaluationRecord {
    public var kid: KernelInceptionDistance.Result? {
        get { values[.kid] as? KernelInceptionDistance.Result }
        set { values[.kid] = newValue }
    }
}
