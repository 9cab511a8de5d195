import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

/// `sagan train` as a user runs it: the built executable in a child process.
@Suite("sagan train", .serialized, .tags(.slow), .skippedInFastRuns)
struct TrainCommandTests {
    func folder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func aShortRunWritesEverythingAndResumes() throws {
        let work = try folder("train")
        defer { try? FileManager.default.removeItem(at: work) }
        let dataset = try makeBlobPack(work, count: 40)
        let run = work.appendingPathComponent("run")
        let config = try writeSmallConfigFile(in: work)
        let common = [
            "train", "--data", dataset.url.path, "--run-dir", run.path, "--config", config.path, "--batch", "4",
            "--log-every", "2",
            "--sample-every", "3", "--checkpoint-every", "3", "--keep", "2",
        ]
        let first = try SaganProcess.sagan(common + ["--steps", "6"])
        #expect(first.status == 0, "\(first.output)")
        let names = try FileManager.default.contentsOfDirectory(atPath: run.path)
        #expect(
            names.contains("run.json") && names.contains("metrics.jsonl")
                && names.contains { $0.hasPrefix("events.out.tfevents.") })
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("samples").path).sorted()
                == ["attention-step-000003.png", "attention-step-000006.png", "step-000003.png", "step-000006.png"])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path).sorted()
                == ["step-000003.safetensors", "step-000006.safetensors"])
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(
            separator: "\n")
        #expect(
            metrics.count == 3 && metrics[0].contains("\"Loss/D\"") && metrics[0].contains("\"Attn/G.blocks.2/gamma\""))
        let sample = try ImageCodec.decodeFile(run.appendingPathComponent("samples/step-000006.png").path)
        #expect(sample.image.width == 2 * 32 + 3 * 2 && sample.image.channels == 1)
        let info = try JSONValue(parsing: Data(contentsOf: run.appendingPathComponent("run.json")))
        #expect(
            info["dataset_digest"]?.string == dataset.sourceDigest
                && info["command_line"]?.strings?.contains("--steps") == true)

        // A corrupt newest checkpoint is skipped with a warning; training resumes from the one before.
        try Data("garbage".utf8).write(to: run.appendingPathComponent("checkpoints/step-000009.safetensors"))
        let resumed = try SaganProcess.sagan(common + ["--steps", "8", "--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("skipping unreadable checkpoint step-000009.safetensors"))
        #expect(resumed.output.contains("resuming from") && resumed.output.contains("at step 6"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)
                .contains("step-000008.safetensors"))
    }

    /// Checkpoints are Float32 whatever the precision: a bf16 run resumes in fp32 and back, and
    /// run.json says which precision each part ran in.
    @Test func aBF16RunResumesInFP32AndBack() throws {
        let work = try folder("bf16")
        defer { try? FileManager.default.removeItem(at: work) }
        let dataset = try makeBlobPack(work, count: 24)
        let run = work.appendingPathComponent("run")
        let common = [
            "train", "--data", dataset.url.path, "--run-dir", run.path, "--batch", "4", "--log-every", "1",
            "--sample-every", "100", "--checkpoint-every", "2",
        ]
        // Without bf16 instructions oneDNN refuses bf16 (naming the flag, creating nothing) and the
        // reference backend's bf16 mode, which rounds at the same points, stands in.
        var backend: [String] = []
        if Engine.bf16Instructions.isEmpty {
            let refused = try SaganProcess.sagan(common + ["--precision", "bf16", "--steps", "2"])
            #expect(refused.status == 64 && refused.output.contains("--precision: "), "\(refused.output)")
            #expect(!FileManager.default.fileExists(atPath: run.path), "a refused run creates no folder")
            backend = ["--backend", "reference"]
        }
        for (precision, steps) in [("bf16", 2), ("fp32", 4), ("bf16", 6)] {
            let resume = steps == 2 ? [] : ["--resume", "auto"]
            let outcome = try SaganProcess.sagan(
                common + backend + ["--precision", precision, "--steps", "\(steps)"] + resume)
            #expect(outcome.status == 0, "\(outcome.output)")
            #expect(outcome.output.contains("in \(precision);"), "\(outcome.output)")
            let checkpoint = try SafeTensorsFile(
                contentsOf: run.appendingPathComponent(String(format: "checkpoints/step-%06d.safetensors", steps)))
            let types = Set(checkpoint.entries.values.map(\.dtype))
            #expect(types.isSubset(of: [.F32, .I64, .U8]), "checkpoint after \(precision): \(types)")
            #expect(checkpoint.entries.values.contains { $0.dtype == .F32 })
        }
        let info = try JSONValue(parsing: Data(contentsOf: run.appendingPathComponent("run.json")))
        #expect(info["precision"]?.string == "bf16")
        let resumes = try #require(info["resumes"]?.array)
        #expect(resumes.map { $0["precision"]?.string } == ["fp32", "bf16"])
        let steps = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"Loss/D\"") }
        #expect(steps.count == 6, "one metrics row per step across the three parts")
    }

    @Test func badInputExitsWith64AndOneClearLine() throws {
        let work = try folder("bad")
        defer { try? FileManager.default.removeItem(at: work) }
        let missing = try SaganProcess.sagan([
            "train", "--data", work.appendingPathComponent("nope.safetensors").path, "--run-dir", work.path,
        ])
        #expect(missing.status == 64 && missing.output.contains("nope.safetensors"), "\(missing.output)")
        let flag = try SaganProcess.sagan(["train", "--batch", "-3", "--run-dir", work.path])
        #expect(flag.status == 64, "\(flag.output)")
        let preset = try SaganProcess.sagan(["train", "--preset", "nonsense"])
        #expect(preset.status == 64 && preset.output.contains("nonsense"), "\(preset.output)")
        let check = try SaganProcess.sagan(["train", "--replica-check-every", "0", "--run-dir", work.path])
        #expect(check.status == 64 && check.output.contains("--replica-check-every"), "\(check.output)")
        let evalEvery = try SaganProcess.sagan(["train", "--eval-every", "0", "--run-dir", work.path])
        #expect(evalEvery.status == 64 && evalEvery.output.contains("--eval-every"), "\(evalEvery.output)")
        let evalAlone = try SaganProcess.sagan(["train", "--eval-num", "100", "--run-dir", work.path])
        #expect(evalAlone.status == 64 && evalAlone.output.contains("need --eval-every"), "\(evalAlone.output)")
        let evalMetric = try SaganProcess.sagan([
            "train", "--eval-every", "5", "--eval-metrics", "is", "--run-dir", work.path,
        ])
        #expect(evalMetric.status == 64 && evalMetric.output.contains("--eval-metrics"), "\(evalMetric.output)")

        // Issue 14, case 8: each of these was exit status 1 with raw Foundation text.
        let infinite = work.appendingPathComponent("infinite")
        let lr = try SaganProcess.sagan(["train", "--lr-g", "inf", "--run-dir", infinite.path, "--steps", "1"])
        #expect(lr.status == 64 && lr.output.contains("learning rates must be positive and finite"), "\(lr.output)")
        #expect(!FileManager.default.fileExists(atPath: infinite.path), "no run folder for a refused run")
        let aFile = work.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: aFile)
        let fileAsRun = try SaganProcess.sagan(["train", "--run-dir", aFile.path, "--steps", "1"])
        #expect(fileAsRun.status == 64 && fileAsRun.output.contains("is a file, not a folder"), "\(fileAsRun.output)")
        let empty = work.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        let zeroByte = try SaganProcess.sagan(["inspect", "model", "--checkpoint", empty.path])
        #expect(zeroByte.status == 64 && zeroByte.output.contains(empty.path), "\(zeroByte.output)")

        // A second writer on a run folder is refused, naming the process that holds it.
        let locked = work.appendingPathComponent("locked")
        let lock = try RunFolderLock(locked)
        let second = try SaganProcess.sagan(["train", "--run-dir", locked.path, "--steps", "1"])
        #expect(
            second.status == 64 && second.output.contains("is in use by process \(getpid())"), "\(second.output)")
        withExtendedLifetime(lock) {}

        // A checkpoint of another preset.
        let dataset = try makeBlobPack(work, count: 8)
        let config = try smallTrainConfig(ema: false)
        let checkpoint = work.appendingPathComponent("tiny.safetensors")
        try TrainingCheckpoint.save(
            Trainer(config: config), datasetDigest: dataset.sourceDigest, commandLine: "", to: checkpoint)
        let other = try SaganProcess.sagan([
            "train", "--preset", "sagan32", "--data", dataset.url.path, "--resume", checkpoint.path, "--run-dir",
            work.path,
        ])
        #expect(
            other.status == 64 && other.output.contains("was trained with preset tiny32, not sagan32"),
            "\(other.output)")
        let nowhere = work.appendingPathComponent("missing-folder/grid.png").path
        let generate = try SaganProcess.sagan([
            "generate", "--checkpoint", checkpoint.path, "--seeds", "0-3", "--out", nowhere,
        ])
        #expect(generate.status == 64 && generate.output.contains("\(nowhere): the folder"), "\(generate.output)")
    }

    @Test func sigtermFinishesTheStepSavesAndExitsZero() throws {
        let work = try folder("signal")
        defer { try? FileManager.default.removeItem(at: work) }
        let dataset = try makeBlobPack(work, count: 40)
        let run = work.appendingPathComponent("run")
        let config = try writeSmallConfigFile(in: work, extra: #""logEvery": 1"#)
        let outcome = try SaganProcess.sagan(
            [
                "train", "--data", dataset.url.path, "--run-dir", run.path, "--config", config.path, "--batch", "4",
                "--steps", "100000", "--checkpoint-every", "100000",
            ], signal: (SIGTERM, .output("step 1/")))
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(outcome.output.contains("stopped at step"), "\(outcome.output)")
        let checkpoints = RunDirectory.checkpointFiles(in: run.appendingPathComponent("checkpoints"))
        #expect(checkpoints.count == 1)
        if let file = checkpoints.first {
            let (trainer, _) = try TrainingCheckpoint.load(file)
            #expect(trainer.step >= 1 && trainer.step < 1000)
        }
    }

    /// Issue 14, case 4: a batch that cannot fit is refused before anything is written, with the
    /// memory it needs and the memory there is, instead of a crash in the middle of a step.
    @Test func aBatchThatCannotFitIsRefusedUpFront() throws {
        guard SaganProcess.fashionMNISTInstalled(at: DefaultDataset.packageFolder) else { return }
        let work = try folder("memory")
        defer { try? FileManager.default.removeItem(at: work) }
        let run = work.appendingPathComponent("run")
        let outcome = try SaganProcess.sagan(
            ["train", "--preset", "tiny32", "--batch", "50000", "--steps", "1", "--run-dir", run.path],
            addressSpaceKiB: 8_000_000)
        let text = outcome.output
        #expect(outcome.status == 64 && text.contains("batch 50000 needs about"), "\(text)")
        #expect(text.contains("MiB are available") && !FileManager.default.fileExists(atPath: run.path), "\(text)")
    }

    /// Issue 14, case 6: SIGTERM during `dataset pack` leaves neither the pack nor a partial file.
    @Test func sigtermStopsAPackWithoutLeavingFiles() throws {
        let source = DefaultDataset.packageFolder + "/" + DefaultDataset.trainImages
        guard SaganProcess.fashionMNISTInstalled(at: source) else { return }
        let work = try folder("pack-signal")
        defer { try? FileManager.default.removeItem(at: work) }
        let destination = work.appendingPathComponent("fm.safetensors")
        let outcome = try SaganProcess.sagan(
            [
                "dataset", "pack", "--source", source, "--dest", destination.path, "--resolution", "32", "--channels",
                "1",
            ],
            signal: (SIGTERM, .output("packing ")))
        #expect(outcome.status == 128 + SIGTERM && outcome.output.contains("was not written"), "\(outcome.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path).isEmpty)
    }

    @Test func sagan32RunsOnFashionMNIST() throws {
        guard SaganProcess.fashionMNISTInstalled(at: DefaultDataset.packageFolder) else { return }
        let work = try folder("fashion")
        defer { try? FileManager.default.removeItem(at: work) }
        let outcome = try SaganProcess.sagan([
            "train", "--preset", "sagan32", "--steps", "3", "--batch", "8", "--run-dir",
            work.appendingPathComponent("run").path,
            "--sample-every", "3", "--log-every", "1",
        ])
        #expect(outcome.status == 0, "\(outcome.output)")
        let metrics = try String(contentsOf: work.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8).split(
            separator: "\n")
        #expect(metrics.count == 3)
    }
}
