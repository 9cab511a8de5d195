import Autodiff
import FileFormats
import Foundation

/// Times precision and recall on N real and N fake feature-like vectors of Inception's 2048 dimensions
/// (`sagan bench precision-recall`); the same features can be written for the numpy reference
/// (Tests/Reference/precision_recall.py) to time on the same machine.
public enum PrecisionRecallBenchmark {
    public struct Timing: Sendable, Codable {
        public let count: Int
        public let seconds: Double
        /// The most tensor storage alive at once during the computation.
        public let peakTensorBytes: Int
        public let precision: Double
        public let recall: Double
    }

    /// Non-negative vectors correlated through a shared part (as pooled ReLU features are); the fake
    /// set shifted slightly, so that the sets overlap partly.
    public static func features(count: Int, seed: UInt64) -> (real: [Float], fake: [Float]) {
        let d = InceptionV3.featureCount
        var random = RandomGenerator(seed: seed)
        let shared = random.normal(count: d)
        func set(_ shift: Float) -> [Float] {
            let noise = random.normal(count: count * d)
            return (0..<(count * d)).map { max(0, shared[$0 % d] + noise[$0] + shift) * 0.3 }
        }
        return (set(0), set(0.02))
    }

    /// Computes precision and recall once on `count` real and fake vectors; with `featuresFile`, first
    /// writes them there ("real", "fake": F32 [count, 2048]).
    public static func run(count: Int, featuresFile: URL? = nil, seed: UInt64 = 0) throws -> Timing {
        let (real, fake) = features(count: count, seed: seed)
        if let featuresFile {
            let d = InceptionV3.featureCount
            try SafeTensorsFile.write(
                [
                    ("real", Tensor(shape: [count, d], scalars: real)),
                    ("fake", Tensor(shape: [count, d], scalars: fake)),
                ],
                to: featuresFile)
        }
        let start = Date()
        let (result, bytes) = Engine.peakTensorBytes {
            PrecisionRecall.compute(real: real, fake: fake, dimension: InceptionV3.featureCount)
        }
        return Timing(
            count: count, seconds: Date().timeIntervalSince(start), peakTensorBytes: bytes,
            precision: result.precision, recall: result.recall)
    }
}
