import Autodiff
import Foundation

/// What `sagan bench inception` measured: how fast the FID network turns images into features,
/// which is what KID and FID cost per image (decoding and the resize to 299 excluded).
public struct InceptionBenchmarkResult: Sendable, Codable {
    public let backend: String
    public let threads: Int
    public let batch: Int
    /// Seconds of each timed batch.
    public let batchSeconds: [Double]
    /// Floating-point operations per image (2 per multiply-add), counted over the convolutions run.
    public let flopsPerImage: Double
    /// Whether the converted FID weights were used (random weights time the same, values aside).
    public let trainedWeights: Bool
    public let profile: EngineProfile?

    public var medianSeconds: Double { batchSeconds.sorted()[batchSeconds.count / 2] }
    public var imagesPerSecond: Double { Double(batch) / medianSeconds }
    public var gflops: Double { flopsPerImage * imagesPerSecond / 1e9 }
}

/// Times InceptionV3 forward passes on random images in [−1, 1), the way the feature extractor runs
/// them (no tape, Float32).
public enum InceptionBenchmark {
    public static func run(batch: Int, iterations: Int, profile: Bool) throws -> InceptionBenchmarkResult {
        let trainedWeights = FileManager.default.fileExists(atPath: InceptionWeights.defaultURL.path)
        let model = trainedWeights ? try InceptionWeights.load(from: InceptionWeights.defaultURL) : InceptionV3()
        var random = RandomGenerator(seed: 3)
        let side = InceptionV3.inputSide
        // (B, 3, 299, 299)
        let images = Tensor.randomUniform([batch, 3, side, side], low: -1, high: 1, generator: &random)
        // The warm-up creates oneDNN's primitives and counts the convolutions' work.
        let counter = EngineProfiler()
        _ = counter.run { noGrad { model(images) }.scalars }
        let flops = counter.profile.convolutions.reduce(0) { $0 + $1.flops } / Double(batch)
        let profiler = profile ? EngineProfiler() : nil
        let clock = ContinuousClock()
        var seconds: [Double] = []
        for _ in 0..<iterations {
            let elapsed = clock.measure {
                if let profiler {
                    _ = profiler.run { noGrad { model(images) }.scalars }
                } else {
                    _ = noGrad { model(images) }.scalars
                }
            }
            seconds.append(elapsed.seconds)
        }
        return InceptionBenchmarkResult(
            backend: Engine.backendName, threads: Engine.threadCount ?? 1, batch: batch, batchSeconds: seconds,
            flopsPerImage: flops, trainedWeights: trainedWeights, profile: profiler?.profile)
    }
}
