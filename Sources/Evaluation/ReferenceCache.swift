import Autodiff
import Datasets
import FileFormats
import Foundation

/// Real-set Inception features and statistics, kept in the cache folder so that evaluating many
/// checkpoints against one dataset computes them once. The key covers everything that changes
/// them: the images' content digest, which images (N and selection seed), the input protocol and
/// the feature extractor's digest.
public struct ReferenceFeatures {
    public let features: [Float]
    public let statistics: FeatureStatistics
    /// Σ^½ of the statistics, for FID.
    public let covarianceRoot: Matrix

    public static let version = "1"

    public static func key(contentDigest: String, count: Int, seed: UInt64) -> String {
        var hasher = SHA256()
        let fields = [
            "v\(version)", contentDigest, "\(count)", "\(seed)", InceptionInput.protocolName, InceptionWeights.sha256,
        ]
        hasher.update("sagan-eval-reference " + fields.joined(separator: "|"))
        return hasher.finalize()
    }

    public static func url(key: String, cache: URL = DefaultDataset.cacheFolder) -> URL {
        cache.appendingPathComponent("eval").appendingPathComponent("reference-\(key.prefix(24)).safetensors")
    }

    public init(features: [Float]) throws {
        self.features = features
        statistics = FeatureStatistics(features: features, dimension: InceptionV3.featureCount)
        covarianceRoot = try FrechetDistance.squareRoot(statistics.covariance)
    }

    /// The cached entry for `key`, or nil when there is none or it does not belong to the key.
    public static func load(key: String, cache: URL = DefaultDataset.cacheFolder) -> ReferenceFeatures? {
        let url = url(key: key, cache: cache)
        guard let file = try? SafeTensorsFile(contentsOf: url), file.metadata["key"] == key,
            let features = try? file.tensor("features").scalars,
            let mean = try? doubles(file, "mean"), let covariance = try? doubles(file, "covariance"),
            let root = try? doubles(file, "root")
        else { return nil }
        let d = InceptionV3.featureCount
        guard mean.count == d, covariance.count == d * d, root.count == d * d, features.count % d == 0 else {
            return nil
        }
        return ReferenceFeatures(
            features: features,
            statistics: FeatureStatistics(
                count: features.count / d, mean: mean, covariance: Matrix(size: d, values: covariance)),
            covarianceRoot: Matrix(size: d, values: root))
    }

    private init(features: [Float], statistics: FeatureStatistics, covarianceRoot: Matrix) {
        (self.features, self.statistics, self.covarianceRoot) = (features, statistics, covarianceRoot)
    }

    /// Writes the entry atomically under `key`.
    public func save(key: String, cache: URL = DefaultDataset.cacheFolder) throws {
        let url = Self.url(key: key, cache: cache)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let d = InceptionV3.featureCount
        let raw: [SafeTensorsFile.RawTensor] = [
            .init(name: "features", tensor: Tensor(shape: [features.count / d, d], scalars: features)),
            .init(name: "mean", dtype: .F64, shape: [d], bytes: Self.bytes(statistics.mean)),
            .init(name: "covariance", dtype: .F64, shape: [d, d], bytes: Self.bytes(statistics.covariance.values)),
            .init(name: "root", dtype: .F64, shape: [d, d], bytes: Self.bytes(covarianceRoot.values)),
        ]
        try writeAtomically(
            try SafeTensorsFile.encode(
                raw: raw,
                metadata: [
                    "key": key, "protocol": InceptionInput.protocolName,
                    "extractor_sha256": InceptionWeights.sha256,
                ]), to: url)
    }

    static func bytes(_ values: [Double]) -> Data { values.withUnsafeBytes { Data($0) } }

    static func doubles(_ file: SafeTensorsFile, _ name: String) throws -> [Double] {
        guard file.entries[name]?.dtype == .F64 else {
            throw SafeTensorsError.wrongDType(
                name, found: file.entries[name]?.dtype.rawValue ?? "none", expected: "F64")
        }
        return try file.withBytes(of: name) { bytes in
            (0..<(bytes.count / 8)).map { bytes.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
        }
    }
}
