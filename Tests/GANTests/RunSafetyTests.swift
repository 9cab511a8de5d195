import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import NeuralNet
import TestSupport
import Testing

/// A run folder that nothing can lose (issue 14): refusals instead of mixed runs, one writer, a
/// rescue after NaN, no non-finite or damaged checkpoint accepted, clean temporaries and metrics.
@Suite("Run safety", .serialized)
struct RunSafetyTests {
    typealias Workspace = TrainingRunTests.Workspace

    /// Trains `steps` steps in a fresh workspace run, checkpointing every `every`.
    func trained(_ work: Workspace, steps: Int, every: Int, logEvery: Int = 1) throws -> TrainingRunOptions {
        var options = work.options(steps: steps)
        options.overrides.checkpointEvery = every
        options.overrides.logEvery = logEvery
        options.overrides.keepCheckpoints = 10
        _ = try TrainingRun(options, dataset: work.dataset).train(commandLine: ["test"])
        return options
    }

    func metricSteps(_ folder: URL) throws -> [Int] {
        try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap {
                (try? JSONValue(parsing: String($0)))?["step"]?.int
            }
    }

    @Test func autoResumeRefusesWhenNoCheckpointCanBeRead() throws {
        let work = try Workspace("unreadable")
        defer { work.remove() }
        let options = try trained(work, steps: 4, every: 2)
        let checkpoints = options.folder!.appendingPathComponent("checkpoints")
        for file in RunDirectory.checkpointFiles(in: checkpoints) { try Data(repeating: 7, count: 100).write(to: file) }
        let runInfo = try Data(contentsOf: options.folder!.appendingPathComponent("run.json"))
        var resume = TrainingRunOptions()
        resume.folder = options.folder
        resume.resume = .auto
        #expect(
            throws: TrainingRunError.noReadableCheckpoint(
                folder: options.folder!.path, files: ["step-000004.safetensors", "step-000002.safetensors"])
        ) { try TrainingRun(resume, dataset: work.dataset) }
        #expect(RunDirectory.checkpointFiles(in: checkpoints).count == 2, "nothing deleted")
        #expect(try Data(contentsOf: options.folder!.appendingPathComponent("run.json")) == runInfo)
        // A new run (no --resume) may not take over the folder either.
        var fresh = work.options(steps: 2)
        fresh.folder = options.folder
        #expect(throws: TrainingRunError.folderHoldsRun(options.folder!.path, checkpoints: 2)) {
            try TrainingRun(fresh, dataset: work.dataset)
        }
    }

    @Test func aSecondWriterIsRefusedWithTheHoldersPID() throws {
        let work = try Workspace("lock")
        defer { work.remove() }
        let options = work.options(steps: 1)
        let held = try RunFolderLock(options.folder!)
        let run = try TrainingRun(options, dataset: work.dataset)
        #expect(throws: TrainingRunError.folderInUse(options.folder!.path, pid: getpid())) {
            try run.train(commandLine: ["test"])
        }
        withExtendedLifetime(held) {}
        let file = work.folder.appendingPathComponent("plain-file")
        try Data().write(to: file)
        #expect(throws: TrainingRunError.folderUnusable(file.path, reason: "is a file, not a folder")) {
            try RunFolderLock(file)
        }
    }

    /// After a NaN stop the user resumes with lower learning rates: allowed settings change and are
    /// recorded in run.json; the others are refused.
    @Test func aResumedRunTakesTheSettingsThatMayChangeAndRecordsThem() throws {
        let work = try Workspace("rescue")
        defer { work.remove() }
        let options = try trained(work, steps: 2, every: 2)
        var resume = TrainingRunOptions()
        resume.folder = options.folder
        resume.resume = .auto
        resume.overrides.steps = 3
        resume.overrides.learningRateD = 1e-4
        resume.overrides.onNonFinite = .skip
        let run = try TrainingRun(resume, dataset: work.dataset)
        #expect(run.trainer.optimizerD.learningRate == 1e-4 && run.trainer.config.onNonFinite == .skip)
        #expect(
            run.resumeChanges == ["steps": "2 → 3", "learningRateD": "0.0004 → 0.0001", "onNonFinite": "stop → skip"])
        _ = try run.train(commandLine: ["resume"])
        let info = try JSONValue(parsing: Data(contentsOf: run.folder.appendingPathComponent("run.json")))
        let resumes = try #require(info["resumes"]?.array)
        #expect(resumes.count == 1 && resumes[0]["step"]?.int == 2)
        #expect(resumes[0]["changes"]?["learningRateD"]?.string == "0.0004 → 0.0001")
        #expect(info["command_line"]?.strings == ["test"], "the first command line stays")

        resume.overrides = TrainOverrides()
        resume.overrides.batchSize = 8
        #expect(throws: TrainingRunError.settingFixed("batchSize", checkpoint: "4", requested: "8")) {
            try TrainingRun(resume, dataset: work.dataset)
        }
        resume.overrides = TrainOverrides()
        resume.configFile = work.configFile
        _ = try TrainingRun(resume, dataset: work.dataset)  // the run's own --config again: accepted
        let wider = work.folder.appendingPathComponent("wider.json")
        try Data(#"{"model": {"baseWidth": 256}}"#.utf8).write(to: wider)
        resume.configFile = wider
        #expect(throws: TrainingRunError.settingFixed("model.baseWidth", checkpoint: "128", requested: "256")) {
            try TrainingRun(resume, dataset: work.dataset)
        }
    }

    @Test func checkpointsNeverHoldNonFiniteValuesAndDamageIsDetected() throws {
        let work = try Workspace("finite")
        defer { work.remove() }
        let trainer = Trainer(config: try smallTrainConfig(ema: false))
        let file = work.folder.appendingPathComponent("good.safetensors")
        try TrainingCheckpoint.save(trainer, datasetDigest: "", commandLine: "", to: file)
        #expect(try TrainingCheckpoint.load(file).trainer.step == 0)

        // A flipped byte in the tensor data is caught by the checksum.
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 5] ^= 0x10
        let damaged = work.folder.appendingPathComponent("damaged.safetensors")
        try bytes.write(to: damaged)
        do {
            _ = try TrainingCheckpoint.load(damaged)
            Issue.record("a damaged checkpoint loaded")
        } catch SafeTensorsError.malformed(let reason, let path) {
            #expect(reason.contains("checksum") && path == damaged.path)
        }

        // NaN weights are refused when writing, and when reading a file written without the check.
        let weight = trainer.generator.namedParameters()[0].parameter
        weight.assign(Tensor(shape: weight.shape, scalars: [Float](repeating: .nan, count: weight.value.count)))
        let poisoned = work.folder.appendingPathComponent("nan.safetensors")
        #expect(throws: SafeTensorsError.self) {
            try TrainingCheckpoint.save(trainer, datasetDigest: "", commandLine: "", to: poisoned)
        }
        #expect(!FileManager.default.fileExists(atPath: poisoned.path))
        var file2 = try SafeTensorsFile(contentsOf: file)
        var tensors = file2.names.map { (name: $0, tensor: try! file2.tensor($0)) }
        tensors[0].tensor = Tensor(
            shape: tensors[0].tensor.shape, scalars: [Float](repeating: .nan, count: tensors[0].tensor.count))
        try SafeTensorsFile.write(
            tensors, metadata: file2.metadata.filter { $0.key != SafeTensorsFile.checksumKey }, to: poisoned)
        #expect(throws: SafeTensorsError.nonFinite(tensors[0].name, file: poisoned.path)) {
            try TrainingCheckpoint.load(poisoned)
        }
        #expect(throws: SafeTensorsError.nonFinite(tensors[0].name, file: poisoned.path)) {
            try LoadedGenerator(contentsOf: poisoned, ema: false)
        }
        file2 = try SafeTensorsFile(contentsOf: file)
        #expect(file2.metadata[SafeTensorsFile.checksumKey] != nil)
    }

    /// kill -9 after step 6 but before its checkpoint: the resumed run logs steps 5 and 6 again, so
    /// their first rows must go. Stale temporaries of dead processes go too.
    @Test func resumingKeepsEachStepOnceInMetricsAndRemovesStaleTemporaries() throws {
        let work = try Workspace("metrics")
        defer { work.remove() }
        let options = try trained(work, steps: 6, every: 4)
        let checkpoints = options.folder!.appendingPathComponent("checkpoints")
        try FileManager.default.removeItem(at: checkpoints.appendingPathComponent("step-000006.safetensors"))
        let stale = [
            checkpoints.appendingPathComponent(".step-000006.safetensors.999999.tmp"),
            options.folder!.appendingPathComponent(".run.json.999999.tmp"),
            options.folder!.appendingPathComponent("samples/.step-000006.png.999999.tmp"),
        ]
        for file in stale { try Data(repeating: 0, count: 64).write(to: file) }
        var handle = try FileHandle(forWritingTo: options.folder!.appendingPathComponent("metrics.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"step\": 7, \"Loss/D\"".utf8))  // a row cut off by the kill
        try handle.close()
        #expect(try metricSteps(options.folder!) == [1, 2, 3, 4, 5, 6])

        var resume = TrainingRunOptions()
        resume.folder = options.folder
        resume.resume = .auto
        _ = try TrainingRun(resume, dataset: work.dataset).train(commandLine: ["resume"])
        #expect(try metricSteps(options.folder!) == [1, 2, 3, 4, 5, 6])
        for file in stale { #expect(!FileManager.default.fileExists(atPath: file.path), "\(file.lastPathComponent)") }
        handle = try FileHandle(forReadingFrom: options.folder!.appendingPathComponent("metrics.jsonl"))
        #expect(try handle.readToEnd()?.last == UInt8(ascii: "\n"))
    }

    /// `--on-nan skip` that skips every step stops after `maximumConsecutiveSkips` with a checkpoint.
    @Test func endlessSkippingStops() throws {
        let work = try Workspace("skips")
        defer { work.remove() }
        var options = work.options(steps: 50)
        options.overrides.onNonFinite = .skip
        options.overrides.learningRateD = 1e30
        options.overrides.learningRateG = 1e30
        let run = try TrainingRun(options, dataset: work.dataset)
        run.maximumConsecutiveSkips = 3
        do {
            _ = try run.train(commandLine: ["test"])
            Issue.record("training with learning rates of 1e30 went through")
        } catch TrainingRunError.tooManySkips(let count, let saved) {
            #expect(count == 3 && FileManager.default.fileExists(atPath: saved))
        }
    }

    @Test func memoryIsEstimatedFromTwoSmallBatches() throws {
        var config = try smallTrainConfig(ema: false)
        // Tensor memory is counted process-wide and other suites run alongside, adding their tensors
        // to one peak or another: a disturbed pair of measurements is taken again (at most 5 times).
        config.batchSize = 8
        var estimate = MemoryEstimate.measure(config)
        var measured = estimate
        for _ in 0..<5 {
            config.batchSize = 8
            estimate = MemoryEstimate.measure(config)
            config.batchSize = 64
            measured = MemoryEstimate.measure(config)
            if estimate.bytesPerImage > 0 && measured.bytes > estimate.bytes { break }
        }
        #expect(estimate.bytesPerImage > 0 && measured.bytes > estimate.bytes)
        // Linear in the batch: 56 more images cost 56 times the per-image part.
        let larger = estimate.atBatchSize(64)
        #expect(larger.bytes - estimate.bytes == 56 * estimate.bytesPerImage && larger.batchSize == 64)
        if let available = estimate.availableBytes, let largest = estimate.largestBatch {
            #expect(largest > 8 && available > estimate.bytes && estimate.fits)
        }
    }

    @Test func configErrorsNameTheKeyTheValueAndTheType() throws {
        let base = try smallTrainConfig()
        let cases: [(String, String)] = [
            (#"{"batchSize": 16"#, "not valid JSON"),
            (#"[1, 2]"#, "not a JSON object"),
            (#"{"batchSize": 16.5}"#, #""batchSize": 16.5 is not a whole number"#),
            (#"{"learningRateG": 1e39}"#, #""learningRateG": 1e39 is not a number within the 32-bit float range"#),
            (#"{"model": {"baseWidth": "wide"}}"#, #""model.baseWidth": wide is not a whole number"#),
            (#"{"loss": "square"}"#, #""loss": square is not one of the names Loss takes"#),
        ]
        for (json, expected) in cases {
            do {
                _ = try base.applying(jsonDifferences: Data(json.utf8), source: "--config c.json")
                Issue.record("\(json) was accepted")
            } catch ConfigurationError.configFile(let source, let message) {
                #expect(source == "--config c.json" && message.hasPrefix(expected), "\(json): \(message)")
            }
        }
        var infinite = base
        infinite.learningRateG = .infinity
        #expect(throws: ConfigurationError.self) { try infinite.validate() }
        // A FuzzConfig finding: a negative sample count crashed validate() (the square root of a
        // negative number converted to Int).
        let negative = try base.applying(jsonDifferences: Data(#"{"sampleCount": -3}"#.utf8), source: "fuzz")
        #expect(
            throws: ConfigurationError.invalidSetting(
                "sampleCount", "sampleCount -3 must be a square number up to 1,024 (a 32x32 grid)")
        ) {
            try negative.validate()
        }
    }

    /// Counts past what the machine can hold are refused naming the setting (issue 27): a base width
    /// of 2^40 or 10^8 samples aborted with "failed to allocate", 100,000 threads crashed libgomp.
    @Test func countsBeyondTheMachineAreRefusedByName() throws {
        let base = try smallTrainConfig()
        let cases: [(String, String)] = [
            (#"{"model": {"baseWidth": 1099511627776}}"#, "model.baseWidth"),
            (#"{"model": {"latentSize": 100000000}}"#, "model.latentSize"),
            (#"{"model": {"classCount": 1000000000}}"#, "model.classCount"),
            (#"{"sampleCount": 100000000}"#, "sampleCount"),
        ]
        for (json, key) in cases {
            let config = try base.applying(jsonDifferences: Data(json.utf8), source: "--config c.json")
            do {
                try config.validate()
                Issue.record("\(json) was accepted")
            } catch ConfigurationError.invalidSetting(let setting, let message) {
                #expect(setting == key && message.hasPrefix(key), "\(json): \(setting): \(message)")
            }
        }
        #expect(throws: EngineError.invalidThreadCount(100_000)) {
            try Engine.run(EngineConfiguration(threads: 100_000)) {}
        }
        #expect(throws: ConfigurationError.self) { try LatentCodes.parseSeeds("0-99998,0-99998") }
        var model = base.model
        model.resolution = 512
        #expect(throws: ConfigurationError.self) { try LatentCodes.checkCount(100_000_000, of: model, setting: .seeds) }
        try LatentCodes.checkCount(64, of: model, setting: .seeds)
    }

    @Test func gridsMustFitTheirImages() throws {
        #expect(try SampleGrid.columns("8x8", count: 64) == 8)
        #expect(try SampleGrid.columns("10x7", count: 64) == 10)
        #expect(throws: ConfigurationError.self) { try SampleGrid.columns("1000x1000", count: 64) }
        #expect(throws: ConfigurationError.self) { try SampleGrid.columns("8x9", count: 64) }
        #expect(throws: ConfigurationError.self) { try SampleGrid.columns("4x4", count: 64) }
    }

    @Test func atomicWritesNameTheFileWhenTheyFail() throws {
        let missing = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/grid.png")
        #expect(
            throws: FileWriteError(
                file: missing.path, reason: "the folder \(missing.deletingLastPathComponent().path) does not exist")
        ) { try writeAtomically(Data([1]), to: missing) }
    }
}
