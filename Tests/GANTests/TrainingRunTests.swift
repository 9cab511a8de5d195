import Datasets
import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

/// The policies of a training run, called from Swift: settings resolution, resume, cadence, stop.
@Suite("Training run", .serialized)
struct TrainingRunTests {
    /// A work folder with a small pack and a config file that shrinks tiny32 for speed.
    struct Workspace {
        let folder: URL
        let dataset: PackedDataset
        let configFile: URL

        init(_ name: String) throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            dataset = try makeBlobPack(folder, count: 16)
            configFile = folder.appendingPathComponent("small.json")
            let small =
                #"{"model": {"baseWidth": 128, "generatorAttentionSides": [16], "discriminatorAttentionSides": [16]}, "#
                + #""sampleCount": 4, "batchSize": 4}"#
            try Data(small.utf8).write(to: configFile)
        }

        func options(steps: Int, run: String = "run") -> TrainingRunOptions {
            var options = TrainingRunOptions()
            options.configFile = configFile
            options.folder = folder.appendingPathComponent(run)
            options.overrides.steps = steps
            return options
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    @Test func settingsResolveAsPresetThenConfigFileThenOverrides() throws {
        let work = try Workspace("resolve")
        defer { work.remove() }
        var overrides = TrainOverrides()
        overrides.batchSize = 8
        overrides.learningRateD = 2e-4
        let config = try TrainConfig.resolve(
            preset: .tiny32, dataset: work.dataset, configFile: work.configFile, overrides: overrides)
        #expect(config.model.baseWidth == 128, "from the config file")
        #expect(config.batchSize == 8, "the override wins over the config file's 4")
        #expect(config.learningRateD == 2e-4 && config.learningRateG == 1e-4, "the preset's G rate stays")
        #expect(config.model.resolution == 32 && config.model.imageChannels == 1, "sized to the dataset")
        let conditional = try TrainConfig.resolve(
            preset: .tiny32, dataset: work.dataset, configFile: work.configFile, conditional: true)
        #expect(conditional.model.classCount == 2)

        overrides.batchSize = 17
        #expect(throws: ConfigurationError.dataset("batch size 17 is larger than the dataset (16 images)")) {
            try TrainConfig.resolve(preset: .tiny32, dataset: work.dataset, overrides: overrides)
        }
        let missing = work.folder.appendingPathComponent("missing.json")
        #expect(throws: ConfigurationError.configFile("configFile \(missing.path)", "cannot read the file")) {
            try TrainConfig.resolve(preset: .tiny32, dataset: work.dataset, configFile: missing)
        }
    }

    @Test func runFoldersAreNumberedAfterTheHighest() throws {
        let work = try Workspace("numbered")
        defer { work.remove() }
        let runs = work.folder.appendingPathComponent("runs")
        #expect(TrainingRun.nextFolder(in: runs, preset: .tiny32).lastPathComponent == "00000-tiny32")
        for name in ["00003-sagan64", "00007-tiny32", "notes"] {
            try FileManager.default.createDirectory(
                at: runs.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        #expect(TrainingRun.nextFolder(in: runs, preset: .blog128).lastPathComponent == "00008-blog128")
    }

    /// Logs every 2 steps, samples every 3, checkpoints every 2 keeping 2; the last step does all three.
    @Test func theLoopLogsSamplesAndCheckpointsAtTheirIntervals() throws {
        let work = try Workspace("cadence")
        defer { work.remove() }
        var options = work.options(steps: 5)
        options.overrides.logEvery = 2
        options.overrides.sampleEvery = 3
        options.overrides.checkpointEvery = 2
        options.overrides.keepCheckpoints = 2
        let run = try TrainingRun(options, dataset: work.dataset)
        var progressSteps: [Int] = []
        var imagesPerSecond: [Int: Double] = [:]
        let outcome = try run.train(commandLine: ["test"]) { event in
            guard case .progress(let progress) = event else { return }
            progressSteps.append(progress.step)
            imagesPerSecond[progress.step] = progress.imagesPerSecond
        }
        guard case .finished(steps: 5, _) = outcome else {
            Issue.record("outcome \(outcome)")
            return
        }
        #expect(progressSteps == [1, 2, 3, 4, 5])
        let metrics = try String(contentsOf: run.folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let rows = try metrics.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
        #expect(rows.map { $0["step"]?.int } == [2, 4, 5])
        // The printed speed is the logged one: the batch over the median of the recent steps.
        for row in rows {
            let (step, seconds) = (row["step"]?.int ?? 0, row["Time/sec_per_step"]?.double ?? 0)
            let expected = Double(run.trainer.config.batchSize) / seconds
            #expect(abs((imagesPerSecond[step] ?? 0) - expected) <= 1e-5 * expected, "step \(step)")
        }
        let samples = try FileManager.default.contentsOfDirectory(
            atPath: run.folder.appendingPathComponent("samples").path)
        #expect(samples.filter { $0.hasPrefix("step-") }.sorted() == ["step-000003.png", "step-000005.png"])
        let checkpoints = RunDirectory.checkpointFiles(in: run.folder.appendingPathComponent("checkpoints"))
        #expect(
            checkpoints.map(\.lastPathComponent).sorted() == ["step-000004.safetensors", "step-000005.safetensors"])
    }

    @Test func autoResumeSkipsUnreadableCheckpointsAndKeepsTheSettings() throws {
        let work = try Workspace("resume")
        defer { work.remove() }
        var options = work.options(steps: 4)
        options.overrides.checkpointEvery = 2
        options.overrides.keepCheckpoints = 3
        _ = try TrainingRun(options, dataset: work.dataset).train(commandLine: ["test"])
        let checkpoints = options.folder!.appendingPathComponent("checkpoints")
        try Data("damaged".utf8).write(to: checkpoints.appendingPathComponent("step-000004.safetensors"))

        var resume = TrainingRunOptions()
        resume.folder = options.folder
        resume.resume = .auto
        resume.overrides.steps = 6
        var events: [String] = []
        let run = try TrainingRun(resume, dataset: work.dataset) { event in
            switch event {
            case .skippedCheckpoint(let file, _): events.append("skipped \(file.lastPathComponent)")
            case .resumed(let file, let step): events.append("resumed \(file.lastPathComponent) \(step)")
            default: break
            }
        }
        #expect(events == ["skipped step-000004.safetensors", "resumed step-000002.safetensors 2"])
        #expect(run.trainer.step == 2 && run.trainer.config.steps == 6 && run.trainer.config.batchSize == 4)
        #expect(run.resumedFrom?.lastPathComponent == "step-000002.safetensors")
    }

    @Test func resumeRefusesMissingFilesAndOtherPresets() throws {
        let work = try Workspace("refusals")
        defer { work.remove() }
        var options = TrainingRunOptions()
        options.folder = work.folder.appendingPathComponent("run")
        let missing = work.folder.appendingPathComponent("nope.safetensors")
        options.resume = .checkpoint(missing)
        #expect(throws: TrainingRunError.noCheckpoint(missing.path)) { try TrainingRun(options, dataset: work.dataset) }

        let checkpoint = work.folder.appendingPathComponent("tiny.safetensors")
        try TrainingCheckpoint.save(
            Trainer(config: try smallTrainConfig(ema: false)), datasetDigest: work.dataset.sourceDigest,
            commandLine: "", to: checkpoint)
        options.resume = .checkpoint(checkpoint)
        options.preset = .sagan32
        #expect(
            throws: TrainingRunError.presetMismatch(
                checkpoint: checkpoint.path, trained: "tiny32", requested: "sagan32")
        ) {
            try TrainingRun(options, dataset: work.dataset)
        }
        let damaged = work.folder.appendingPathComponent("damaged.safetensors")
        try Data([1, 2, 3]).write(to: damaged)
        options.resume = .checkpoint(damaged)
        #expect(
            throws: TrainingRunError.unreadableCheckpoint(
                .malformed("file of 3 bytes is too small for a safetensors header", file: damaged.path))
        ) {
            try TrainingRun(options, dataset: work.dataset)
        }
    }

    @Test func aRequestedStopSavesOneCheckpointAndReturnsStopped() throws {
        let work = try Workspace("stop")
        defer { work.remove() }
        var options = work.options(steps: 1000)
        options.overrides.checkpointEvery = 1000
        let run = try TrainingRun(options, dataset: work.dataset)
        let outcome = try run.train(commandLine: ["test"]) { event in
            if case .progress(let progress) = event, progress.step == 2 { run.requestStop() }
        }
        guard case .stopped(step: 2, let checkpoint) = outcome else {
            Issue.record("outcome \(outcome)")
            return
        }
        #expect(RunDirectory.checkpointFiles(in: run.folder.appendingPathComponent("checkpoints")) == [checkpoint])
        #expect(try TrainingCheckpoint.load(checkpoint).trainer.step == 2)
    }
}

@Suite("Training benchmark")
struct TrainingBenchmarkTests {
    /// G runs forward twice and backward once (2x), D forward three times and backward 2x, 2x and 1x.
    @Test func theFlopModelCountsEveryPassOfAnIteration() {
        #expect(TrainingBenchmark.flopsPerIteration(generatorMACs: 1, discriminatorMACs: 0, batch: 1) == 8)
        #expect(TrainingBenchmark.flopsPerIteration(generatorMACs: 0, discriminatorMACs: 1, batch: 1) == 16)
        #expect(
            TrainingBenchmark.flopsPerIteration(generatorMACs: 3, discriminatorMACs: 2, batch: 16) == 2 * 16 * (12 + 16)
        )
    }

    @Test func aBenchmarkRunReportsConsistentNumbers() throws {
        var options = TrainingBenchmarkOptions()
        options.preset = .tiny32
        options.imageChannels = 1
        options.batchSize = 2
        options.iterations = 2
        options.warmup = 1
        options.peakGFLOPS = 100
        options.profile = true
        let result = try TrainingBenchmark.run(options)
        #expect(result.iterations == 2 && result.iterationSeconds.count == 2 && result.peakSource == "given")
        #expect(abs(result.gflops / result.peakGFLOPS * 100 - result.percentOfPeak) < 1e-9)
        #expect(abs(result.imagesPerSecond - 2 / (result.msMedian / 1000)) < 1e-6)
        #expect(result.profile?.kernels.isEmpty == false)
    }
}
