import Foundation

/// FID as a metric of the protocol: the Fréchet distance between Gaussians fitted to Inception features.
struct FIDMetric: MetricDefinition {
    let name = "fid"
    let title = "FID"
    let input = MetricInput.inceptionFeatures
    let lowerIsBetter = true
    let headlineKey = "fid"

    func notes(_ options: EvaluationOptions) -> [String] {
        guard options.count < InceptionV3.featureCount else { return [] }
        return [
            "warning: FID from N = \(options.count) per side is biased upward (a 2048-feature covariance from fewer "
                + "than 2048 samples); compare FIDs only at equal N and prefer KID"
        ]
    }

    func compute(_ inputs: MetricInputs) throws -> any MetricValue {
        let real = inputs.realFeatures!
        return FrechetValue(
            try FrechetDistance.distance(
                reference: real.statistics, root: real.covarianceRoot, features: inputs.fakeFeatures!))
    }

    func decode(_ entries: RecordEntries) throws -> (any MetricValue)? {
        try entries.number("fid").map(FrechetValue.init)
    }
}

/// An FID.
struct FrechetValue: MetricValue, Equatable {
    let distance: Double
    init(_ distance: Double) { self.distance = distance }

    var headline: Double { distance }
    var entries: [(key: String, value: RecordEntry)] { [("fid", .number(distance))] }
    var scalars: [(tag: String, value: Float)] { [("Metrics/FID", Float(distance))] }
    var summary: String { String(format: "FID %.3f", distance) }
    var report: [String] { [String(format: "  FID  %.3f", distance)] }
}

extension Metric {
    /// Fréchet Inception Distance (docs/evaluation.md §3).
    public static let fid = Metric(FIDMetric())
}

extension EvaluationRecord {
    public var fid: Double? {
        get { (values[.fid] as? FrechetValue)?.distance }
        set { values[.fid] = newValue.map(FrechetValue.init) }
    }
}
