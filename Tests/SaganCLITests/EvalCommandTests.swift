import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

/// `sagan eval` as a user runs it, on a checkpoint inside a run folder and on two packed sets.
@Suite("sagan eval", .serialized, .tags(.slow), .skippedInFastRuns)
struct EvalCommandTests {
    static let weights = DefaultDataset.cacheFolder.appendingPathComponent("inception-fid.safetensors")

    func folder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func evaluatesACheckpointAndRecordsItInItsRun() throws {
        guard FileManager.default.fileExists(atPath: Self.weights.path) else {
            Issue.record("the FID Inception weights are missing: run `make test-deps` (scripts/export_inception.py)")
            return
        }
        let work = try folder("eval")
        defer { try? FileManager.default.removeItem(at: work) }
        let dataset = try makeBlobPack(work, count: 24)
        let run = try RunDirectory(work.appendingPathComponent("run"))
        let trainer = Trainer(config: try smallTrainConfig())
        let checkpoint = try run.saveCheckpoint(
            trainer, datasetDigest: dataset.sourceDigest, commandLine: "test", keep: 2)
        // A cache of its own, so the reference features are computed here and the user's cache is left alone.
        let cache = ["SAGAN_CACHE": work.appendingPathComponent("cache").path]
        let arguments = [
            "eval", "--checkpoint", checkpoint.path, "--real", dataset.url.path, "--num", "10", "--kid-subsets", "5",
            "--weights", Self.weights.path, "--json",
        ]
        let first = try SaganProcess.sagan(arguments, environment: cache)
        #expect(first.status == 0, "\(first.output)")
        let line = try #require(first.output.split(separator: "\n").first { $0.hasPrefix("{") }, "\(first.output)")
        let record = try JSONValue(parsing: String(line))
        #expect(record["n_real"]?.int == 10 && record["n_fake"]?.int == 10 && record["seed"]?.int == 0)
        #expect(record["fid"]?.double.map { $0 > 0 } == true, "\(record)")
        #expect(record["kid"]?.double != nil && record["kid_subsets"]?.string == "5 x 5")
        #expect(
            record["swd_x1e3_32"]?.double != nil && record["swd_x1e3_16"]?.double != nil
                && record["swd_x1e3_avg"]?.double != nil)
        #expect(
            record["feature_extractor_sha256"]?.string
                == "cbb17ff6082c569be8414cbccb4aad09fe977bb6c1bc1b1ed862f3db3cd1b383")
        #expect(record["resize"]?.string == "nv_bilinear 299, p/128-1" && record["checkpoint_step"]?.int == 0)
        #expect(record["notes"]?.strings?.contains { $0.contains("FID from N = 10") } == true)
        let metrics = try String(contentsOf: run.url.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        #expect(metrics.contains("\"kind\":\"eval\"") && metrics.contains("\"fid\":"))

        // The real set's features come from the cache the second time, and give the same numbers.
        let second = try SaganProcess.sagan(Array(arguments.dropLast()), environment: cache)
        #expect(second.status == 0 && second.output.contains("real features: cached"), "\(second.output)")
        let fid = try #require(record["fid"]?.double)
        #expect(second.output.contains(String(format: "FID  %.3f", fid)), "\(second.output)")

        // Precision and recall, from the same cached features: the report's lines and the record's keys.
        let pr = try SaganProcess.sagan(
            Array(arguments.dropLast()) + ["--metrics", "kid,pr"], environment: cache)
        #expect(pr.status == 0 && pr.output.contains("precision ") && pr.output.contains("coverage "), "\(pr.output)")
        let unknown = try SaganProcess.sagan(Array(arguments.dropLast()) + ["--metrics", "is"], environment: cache)
        #expect(
            unknown.status == 64
                && unknown.output.contains("--metrics: unknown metric \"is\"; choose from fid, kid, swd, pr"),
            "\(unknown.output)")
    }

    @Test func badRequestsAreRefusedWithTheReason() throws {
        let work = try folder("eval-bad")
        defer { try? FileManager.default.removeItem(at: work) }
        let dataset = try makeBlobPack(work, count: 24)
        let tooMany = try SaganProcess.sagan([
            "eval", "--fake", dataset.url.path, "--real", dataset.url.path, "--num", "50",
        ])
        #expect(
            tooMany.status == 64 && tooMany.output.contains("has 24 images; --num 50 needs at least as many"),
            "\(tooMany.output)")
        let both = try SaganProcess.sagan(["eval", "--real", dataset.url.path])
        #expect(
            both.status == 64 && both.output.contains("exactly one of --checkpoint FILE and --fake DATA"),
            "\(both.output)")
        let unknown = try SaganProcess.sagan([
            "eval", "--fake", dataset.url.path, "--real", dataset.url.path, "--metrics", "fid,is",
        ])
        #expect(unknown.status == 64 && unknown.output.contains("unknown metric \"is\""), "\(unknown.output)")
        let noWeights = try SaganProcess.sagan([
            "eval", "--fake", dataset.url.path, "--real", dataset.url.path, "--num", "4",
            "--metrics", "fid", "--weights", work.appendingPathComponent("none.safetensors").path,
        ])
        #expect(
            noWeights.status == 64 && noWeights.output.contains("scripts/export_inception.py"), "\(noWeights.output)")
        // SWD compares one resolution: a 16x16 pack against the 32x32 one.
        let writer = try PackedDatasetWriter(
            destination: work.appendingPathComponent("small.safetensors"), height: 16, width: 16, channels: 1)
        for _ in 0..<4 {
            try writer.append(
                PixelImage(width: 16, height: 16, channels: 1, pixels: .init(repeating: 9, count: 256)), label: nil)
        }
        try writer.finish(metadata: [:], labelNames: [])
        let sizes = try SaganProcess.sagan([
            "eval", "--fake", work.appendingPathComponent("small.safetensors").path, "--real", dataset.url.path,
            "--num", "4", "--metrics", "swd",
        ])
        #expect(sizes.status == 64 && sizes.output.contains("real images are 32x32, fake 16x16"), "\(sizes.output)")
    }
}
