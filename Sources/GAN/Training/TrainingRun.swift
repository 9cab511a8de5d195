import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where a run starts from.
public enum ResumeSource: Sendable, Equatable {
    /// The newest readable checkpoint in the run folder; a new run if there is none.
    case auto
    /// This checkpoint file.
    case checkpoint(URL)
    /// The bytes of this checkpoint file, as another process read them (`TrainingRun.starting`
    /// sends rank 0's to the other ranks).
    case received(Data, from: URL)
}

/// What a run is asked to do: the settings of a new run, or where to resume one.
public struct TrainingRunOptions: Sendable {
    /// The preset of a new run (default tiny32); when resuming, the checkpoint must have been
    /// trained with it.
    public var preset: ModelPreset?
    /// A JSON file of settings that differ from the preset.
    public var configFile: URL?
    public var overrides = TrainOverrides()
    /// Class-conditional training, sized to the dataset's labels.
    public var conditional = false
    /// The run folder; nil: the next free runs/NNNNN-PRESET under `runsFolder`.
    public var folder: URL?
    public var runsFolder = URL(fileURLWithPath: "runs")
    public var resume: ResumeSource?
    /// The ranks of a data-parallel job (`mpirun -np N sagan train`); nil: this process alone.
    public var group: (any ProcessGroup)?
    /// Under a group, batch norm uses the statistics of the whole global batch (`--sync-bn`).
    public var synchronizedBatchNorm = true
    /// Under a group, steps between the ranks' comparison of every parameter, buffer and Adam moment.
    public var replicaCheckEvery = 100
    /// Quality measured while training (`--eval-every`), with the best checkpoint kept; nil: none.
    public var evaluation: PeriodicEvaluationOptions?

    public init() {}
}

/// Why a run could not start or had to stop; the message names the flag or file at fault.
public enum TrainingRunError: Error, Equatable, CustomStringConvertible {
    /// The checkpoint to resume from was trained with another preset than the one asked for.
    case presetMismatch(checkpoint: String, trained: String, requested: String)
    /// `--resume FILE` names a file that does not exist.
    case noCheckpoint(_ path: String)
    /// `--resume FILE` names a file that is not a readable training checkpoint.
    case unreadableCheckpoint(SafeTensorsError)
    /// A non-finite loss, gradient or σ stopped training; the last good state was saved.
    case nonFinite(_ reason: String, savedIn: String)
    /// `--resume auto` found checkpoints but could read none of them: starting over in that folder
    /// would mix two runs, so the run refuses.
    case noReadableCheckpoint(folder: String, files: [String])
    /// A resumed run was asked to change a setting that must stay as the checkpoint has it.
    case settingFixed(_ setting: String, checkpoint: String, requested: String)
    /// Another process trains in this run folder.
    case folderInUse(_ folder: String, pid: Int32)
    /// A new run was pointed at a folder that already holds another run's checkpoints.
    case folderHoldsRun(_ folder: String, checkpoints: Int)
    /// The run folder cannot be made or written.
    case folderUnusable(_ folder: String, reason: String)
    /// Another rank of the job could not start; the message is that rank's.
    case rankFailed(rank: Int, message: String)
    /// The ranks' copies of the training state differ (a bug, or ranks that resumed from different files).
    case replicasDiverged(step: Int, tensor: String)
    /// Training at this batch would need more memory than the process may take.
    case notEnoughMemory(neededMiB: Int, availableMiB: Int, batch: Int, largestBatch: Int?)
    /// `onNonFinite = .skip` dropped this many steps in a row; the state before them was saved.
    case tooManySkips(_ count: Int, savedIn: String)

    public var description: String {
        switch self {
        case .presetMismatch(let checkpoint, let trained, let requested):
            return "\(Setting.resume): \(checkpoint) was trained with preset \(trained), not \(requested)"
        case .noCheckpoint(let path): return "\(Setting.resume): no checkpoint at \(path)"
        case .unreadableCheckpoint(let error): return "\(Setting.resume): \(error.description)"
        case .nonFinite(let reason, let savedIn):
            return
                "\(reason); the last good state is saved in \(savedIn) (resume with a lower "
                + "\(Setting.learningRateD)/\(Setting.learningRateG), "
                + "or \(Setting.onNonFinite) skip)"
        case .noReadableCheckpoint(let folder, let files):
            return
                "\(Setting.resume) auto: none of the \(files.count) checkpoints in \(folder)/checkpoints can be read "
                + "(\(files.joined(separator: ", "))); resume from a file with \(Setting.resume) FILE, or start a new "
                + "run in another \(Setting.folder)"
        case .settingFixed(let setting, let checkpoint, let requested):
            return "\(Setting.resume): \(setting) is \(checkpoint) in the checkpoint and cannot change within a run "
                + "(asked for \(requested)); what may change: \(Setting.steps), \(Setting.learningRateG), "
                + "\(Setting.learningRateD), \(Setting.onNonFinite), \(Setting.logEvery), "
                + "\(Setting.sampleEvery), \(Setting.checkpointEvery), \(Setting.keepCheckpoints)"
        case .rankFailed(let rank, let message): return "rank \(rank): \(message)"
        case .replicasDiverged(let step, let tensor):
            return "step \(step): the ranks' copies of \(tensor) differ; stopped (a run resumed on several "
                + "machines needs the same run folder on each, for example on a shared file system)"
        case .folderInUse(let folder, let pid):
            return
                "\(Setting.folder) \(folder) is in use by process \(pid); wait for it or stop it, or use another "
                + "\(Setting.folder)"
        case .folderUnusable(let folder, let reason): return "\(Setting.folder) \(folder): \(reason)"
        case .folderHoldsRun(let folder, let checkpoints):
            return
                "\(Setting.folder) \(folder) already holds a run (\(checkpoints) "
                + "checkpoint\(checkpoints == 1 ? "" : "s")); "
                + "continue it with \(Setting.resume) auto, or start the new run in another \(Setting.folder)"
        case .notEnoughMemory(let needed, let available, let batch, let largest):
            return "batch \(batch) needs about \(needed) MiB of memory (measured on batches of 2 and 4), but only "
                + "\(available) MiB are "
                + "available\(largest.map { $0 >= 2 ? "; \(Setting.batchSize) \($0) would fit" : "" } ?? "")"
        case .tooManySkips(let count, let savedIn):
            return "\(count) steps in a row were not finite and were skipped; stopped with the state before them "
                + "saved in \(savedIn) (lower the learning rates)"
        }
    }
}

/// Something a run reports while it starts and trains, for a display to show.
public enum TrainingRunEvent: Sendable {
    /// `--resume auto` passed over a checkpoint it could not read.
    case skippedCheckpoint(URL, reason: String)
    /// The run continues from `checkpoint`.
    case resumed(from: URL, step: Int)
    /// `--resume auto` found no checkpoint: a new run starts in the folder.
    case noCheckpointFound(folder: URL)
    /// The dataset is not the one the checkpoint was trained on (by content digest).
    case datasetDiffers(checkpoint: String, dataset: String)
    /// A step was dropped (`onNonFinite = .skip`); training goes on.
    case skippedStep(step: Int, reason: String)
    /// A step finished.
    case progress(TrainingProgress)
    /// The generator is being evaluated at this step (`--eval-every`).
    case evaluating(step: Int)
    /// An evaluation finished; `isBest` when it replaced checkpoints/best.safetensors.
    case evaluated(EvaluationRecord, step: Int, isBest: Bool)
    /// checkpoints/best.safetensors could not stay this run's best (damaged, or measured another
    /// way) and was moved to this file.
    case setAsideBest(URL, reason: String)
}

/// Where a run stands after a step.
public struct TrainingProgress: Sendable {
    public let step: Int
    public let steps: Int
    /// Images per second at the median time of the last 20 steps: the speed now, as the ETA uses it
    /// (an average since the start would carry a slow spell, such as a test run beside it, for hours).
    public let imagesPerSecond: Double
    /// Seconds left at the median time of the last 20 steps, plus the evaluations still due.
    public let secondsLeft: Double
    public let report: StepReport
    /// The latest evaluation's deciding metric and value, and its step (`--eval-every`).
    public let lastEvaluation: (step: Int, metric: Metric, value: Double)?
}

/// How `TrainingRun.train` ended.
public enum TrainingOutcome: Sendable, Equatable {
    /// Every step ran.
    case finished(steps: Int, seconds: Double)
    /// A stop was requested (a signal of `StopSignals`, `requestStop()`); one checkpoint was saved.
    case stopped(step: Int, checkpoint: URL)
}

/// What `--dry-run` reports: the resolved settings, sizes and the measured cost of a step.
public struct DryRunReport: Sendable {
    public let config: TrainConfig
    public let generatorParameters: Int
    public let discriminatorParameters: Int
    /// The median of the steps after one warm-up.
    public let secondsPerStep: Double
    public let measuredSteps: Int
    public let peakResidentMegabytes: Int
    /// The memory training at this batch is expected to take, and what is available.
    public let memory: MemoryEstimate
}

/// A training run: its folder, its trainer and the policies around the training loop. It resolves
/// the settings of a new run or finds the checkpoint to resume, writes run.json, logs, samples and
/// checkpoints at their intervals, and stops cleanly on a signal or a non-finite step.
public final class TrainingRun {
    public let trainer: Trainer
    public let dataset: PackedDataset
    public let folder: URL
    /// The checkpoint this run resumed from, if any.
    public let resumedFrom: URL?
    /// Settings changed on resume, as "setting": "old → new" (recorded in run.json's history).
    public private(set) var resumeChanges: [String: String] = [:]
    private var memoryChecked = false
    /// Steps in a row `onNonFinite = .skip` may drop before the run stops.
    public var maximumConsecutiveSkips = 10

    /// Set by `requestStop()`.
    private let stopFlag = Atomic<Bool>(false)

    /// Sets up a run on `dataset`: resumes from a checkpoint when asked, otherwise resolves new
    /// settings. Creates nothing on disk yet.
    public init(
        _ options: TrainingRunOptions, dataset: PackedDataset, notify: (TrainingRunEvent) -> Void = { _ in }
    ) throws {
        self.dataset = dataset
        folder = options.folder ?? Self.nextFolder(in: options.runsFolder, preset: options.preset ?? .tiny32)
        guard options.replicaCheckEvery >= 1 else {
            throw ConfigurationError.invalidArgument(
                .replicaCheckEvery, "\(Setting.replicaCheckEvery) must be at least 1, got \(options.replicaCheckEvery)")
        }
        replicaCheckEvery = options.replicaCheckEvery
        if let resume = options.resume, let found = try Self.resumed(resume, options, dataset, folder, notify) {
            (trainer, resumedFrom) = found
            resumeChanges = try Self.adoptOverrides(options, trainer: trainer)
        } else {
            // Only rank 0 writes: the other ranks' view of the folder (another machine's) does not matter.
            let existing =
                (options.group?.rank ?? 0) == 0
                ? RunDirectory.checkpointFiles(in: folder.appendingPathComponent("checkpoints")) : []
            guard existing.isEmpty else {
                throw TrainingRunError.folderHoldsRun(folder.path, checkpoints: existing.count)
            }
            trainer = Trainer(
                config: try TrainConfig.resolve(
                    preset: options.preset ?? .tiny32, dataset: dataset, configFile: options.configFile,
                    overrides: options.overrides, conditional: options.conditional))
            resumedFrom = nil
        }
        if let group = options.group {
            try trainer.distribute(over: group, synchronizedBatchNorm: options.synchronizedBatchNorm)
        }
        if let evaluation = options.evaluation, (options.group?.rank ?? 0) == 0 {
            let best = RunDirectory.bestFile(in: folder)
            let previous: BestEvaluation? = if case .valid(let found) = best, resumedFrom != nil { found } else { nil }
            let evaluator = try PeriodicEvaluator(evaluation, dataset: dataset, previous: previous)
            periodicEvaluator = evaluator
            switch best {
            case .none: break
            case .damaged(let reason):
                bestToSetAside = (tag: "damaged", step: nil, reason: "damaged: \(reason)")
            case .valid(let found) where resumedFrom == nil:
                bestToSetAside = (tag: "earlier-run", step: found.step, reason: "the best of an earlier run here")
            case .valid(let found) where found.comparableUnder != evaluator.comparableUnder:
                bestToSetAside = (
                    tag: BestEvaluation.tag(found.comparableUnder), step: found.step,
                    reason: "measured as \(found.comparableUnder), not as \(evaluator.comparableUnder)"
                )
            case .valid: break
            }
        }
    }

    /// checkpoints/best.safetensors when this run cannot keep it as its best (damaged, or measured
    /// another way): moved aside, never replaced.
    private var bestToSetAside: (tag: String, step: Int?, reason: String)?

    /// Rank 0's evaluator when `--eval-every` was given.
    private var periodicEvaluator: PeriodicEvaluator?

    /// Under a group, steps between replica comparisons.
    private let replicaCheckEvery: Int

    /// Whether this process writes the run's files: rank 0, or the only process.
    public var writesFiles: Bool { (trainer.group?.rank ?? 0) == 0 }

    /// The trainer of the checkpoint to resume and its file, or nil when `.auto` finds none.
    static func resumed(
        _ resume: ResumeSource, _ options: TrainingRunOptions, _ dataset: PackedDataset, _ folder: URL,
        _ notify: (TrainingRunEvent) -> Void
    ) throws -> (Trainer, URL)? {
        let candidates: [URL]
        switch resume {
        case .auto: candidates = RunDirectory.checkpointFiles(in: folder.appendingPathComponent("checkpoints"))
        case .checkpoint(let file):
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw TrainingRunError.noCheckpoint(file.path)
            }
            candidates = [file]
        case .received(_, let file): candidates = [file]
        }
        var unreadable: [String] = []
        for candidate in candidates {
            let trainer: Trainer
            let digest: String
            do {
                if case .received(let data, _) = resume {
                    (trainer, digest) = try TrainingCheckpoint.load(data, source: candidate)
                } else {
                    (trainer, digest) = try TrainingCheckpoint.load(candidate)
                }
            } catch let error as SafeTensorsError {
                guard resume == .auto else { throw TrainingRunError.unreadableCheckpoint(error) }
                notify(.skippedCheckpoint(candidate, reason: error.description))
                unreadable.append(candidate.lastPathComponent)
                continue
            }
            if let preset = options.preset, preset != trainer.config.preset {
                throw TrainingRunError.presetMismatch(
                    checkpoint: candidate.path, trained: trainer.config.preset.rawValue, requested: preset.rawValue)
            }
            try trainer.config.model.checkFits(dataset)
            if digest != dataset.sourceDigest {
                notify(.datasetDiffers(checkpoint: digest, dataset: dataset.sourceDigest))
            }
            notify(.resumed(from: candidate, step: trainer.step))
            return (trainer, candidate)
        }
        guard unreadable.isEmpty else {
            throw TrainingRunError.noReadableCheckpoint(folder: folder.path, files: unreadable)
        }
        notify(.noCheckpointFound(folder: folder))
        return nil
    }

    /// Applies the overrides a resumed run may take (steps, learning rates, the non-finite policy,
    /// intervals, checkpoints kept) and refuses the others when they differ from the checkpoint.
    private static func adoptOverrides(_ options: TrainingRunOptions, trainer: Trainer) throws -> [String: String] {
        let saved = trainer.config
        var requested = saved
        // The same --config again is fine; only the settings that may change can differ.
        if let configFile = options.configFile { requested = try requested.applying(configFile: configFile) }
        options.overrides.apply(to: &requested)
        func fixed<T: Equatable>(_ setting: String, _ path: KeyPath<TrainConfig, T>) throws {
            guard requested[keyPath: path] != saved[keyPath: path] else { return }
            throw TrainingRunError.settingFixed(
                setting, checkpoint: "\(saved[keyPath: path])", requested: "\(requested[keyPath: path])")
        }
        try fixed("\(Setting.batchSize)", \.batchSize)
        try fixed("\(Setting.seed)", \.seed)
        try fixed("\(Setting.discriminatorSteps)", \.discriminatorSteps)
        try fixed("\(Setting.loss)", \.loss)
        try fixed("\(Setting.update)", \.update)
        try fixed("\(Setting.ema)", \.ema)
        try fixed("\(Setting.horizontalFlip)", \.horizontalFlip)
        try fixed("\(Setting.dequantize)", \.dequantize)
        if requested.model != saved.model {
            let old = try JSONValue(encoding: saved.model).object ?? [:]
            let new = try JSONValue(encoding: requested.model).object ?? [:]
            let key = old.keys.sorted().first { old[$0] != new[$0] } ?? "model"
            throw TrainingRunError.settingFixed(
                "model.\(key)", checkpoint: old[key]?.displayText ?? "?", requested: new[key]?.displayText ?? "?")
        }
        try fixed("sampleCount", \.sampleCount)
        try fixed("Adam's settings", \.beta1)
        try fixed("Adam's settings", \.beta2)
        try fixed("emaDecay", \.emaDecay)
        if options.conditional && saved.model.classCount == 0 {
            throw TrainingRunError.settingFixed(
                "\(Setting.conditional)", checkpoint: "unconditional", requested: "conditional")
        }
        try requested.validate()
        return trainer.adopt(requested)
    }

    /// runs/NNNNN-PRESET with the next number after the highest in `runs`.
    public static func nextFolder(in runs: URL, preset: ModelPreset) -> URL {
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []
        let next = (existing.compactMap { Int($0.prefix(5)) }.max() ?? -1) + 1
        return runs.appendingPathComponent(String(format: "%05d", next) + "-" + preset.rawValue)
    }

    /// A loader positioned where the trainer left off.
    func batches() throws -> BatchLoader {
        let c = trainer.config
        let options = BatchLoader.Options(
            batchSize: c.batchSize, seed: c.seed, horizontalFlip: c.horizontalFlip, dequantize: c.dequantize)
        return try BatchLoader(dataset: dataset, options: options, cursor: trainer.cursor)
    }

    /// Refuses, before anything is written, a batch that would not fit in memory: running out in the
    /// middle of a step would end the process without a checkpoint.
    public func checkMemory() throws {
        guard !memoryChecked else { return }
        let estimate = MemoryEstimate.measure(trainer.config)
        memoryChecked = true
        guard !estimate.fits, let available = estimate.availableBytes else { return }
        throw TrainingRunError.notEnoughMemory(
            neededMiB: estimate.bytes >> 20, availableMiB: available >> 20, batch: estimate.batchSize,
            largestBatch: estimate.largestBatch)
    }

    /// Trains a few steps to measure their cost, writing nothing (the trainer's state moves on).
    public func dryRun(steps: Int = 4) throws -> DryRunReport {
        let memory = MemoryEstimate.measure(trainer.config)
        let loader = try batches()
        var times: [Double] = []
        for _ in 0..<max(steps, 2) { times.append(try trainer.trainStep { try loader.next() }.seconds) }
        let measured = times.dropFirst().sorted()
        return DryRunReport(
            config: trainer.config, generatorParameters: trainer.generator.parameterCount,
            discriminatorParameters: trainer.discriminator.parameterCount, secondsPerStep: measured[measured.count / 2],
            measuredSteps: measured.count, peakResidentMegabytes: Engine.peakResidentMegabytes, memory: memory)
    }

    // MARK: Training

    /// Whether `train` is past its start (files agreed on by every rank): a failure from here on
    /// leaves the other ranks of a group waiting in a collective, so the job must be ended.
    public private(set) var isTraining = false

    /// Takes the run folder (one writer), cleans it, and writes run.json.
    private func prepareFiles(_ commandLine: [String]) throws -> (RunFolderLock, RunDirectory) {
        let lock = try RunFolderLock(folder)
        // A writer killed between writing and renaming leaves `.NAME.PID.tmp` in any of these folders.
        for subfolder in ["", "samples", "checkpoints"] {
            removeStaleTemporaries(in: folder.appendingPathComponent(subfolder))
        }
        // Rows after the checkpoint (or, for a new run, any rows of a run that never checkpointed) go.
        try RunDirectory.truncateMetrics(in: folder, after: trainer.step)
        let run: RunDirectory
        do {
            run = try RunDirectory(folder)
        } catch {
            throw TrainingRunError.folderUnusable(folder.path, reason: error.localizedDescription)
        }
        try run.writeRunInfo(
            commandLine: commandLine, config: trainer.config, datasetPath: dataset.url.path,
            datasetDigest: dataset.sourceDigest, resumedAt: resumedFrom == nil ? nil : trainer.step,
            changes: resumeChanges, worldSize: trainer.group?.size ?? 1)
        return (lock, run)
    }

    /// Trains to the configured step count, or until a stop is requested. Writes run.json (with
    /// `commandLine`), a metrics line every `logEvery` steps, samples and attention pictures every
    /// `sampleEvery`, and a checkpoint every `checkpointEvery` (keeping `keepCheckpoints`); the last
    /// step does all three. A non-finite step under `onNonFinite = .stop` saves the rolled-back
    /// state and throws `TrainingRunError.nonFinite`.
    public func train(commandLine: [String], notify: (TrainingRunEvent) -> Void = { _ in }) throws -> TrainingOutcome {
        try checkMemory()
        // Rank 0's files, agreed on by every rank: a folder in use or that cannot be written stops
        // the whole job with rank 0's message, instead of leaving the others in a collective.
        let files = try agreeingOnStart(trainer.group) { writesFiles ? try prepareFiles(commandLine) : nil }
        isTraining = true
        guard let (lock, run) = files else { return try trainWithoutFiles() }
        defer { withExtendedLifetime(lock) {} }
        let config = trainer.config
        let joinedCommandLine = commandLine.joined(separator: " ")
        func saveCheckpoint() throws -> URL {
            try run.saveCheckpoint(
                trainer, datasetDigest: dataset.sourceDigest, commandLine: joinedCommandLine,
                keep: config.keepCheckpoints)
        }
        let loader = try batches()
        let clock = ContinuousClock()
        let start = clock.now
        var recent: [Double] = []
        var skippedInARow = 0
        var lastEvaluationSeconds = 0.0
        var lastEvaluation: (step: Int, metric: Metric, value: Double)?
        try checkReplicas()
        if let (tag, step, reason) = bestToSetAside {
            let moved = try run.setAsideBest(tag: tag, step: step, reason: reason)
            notify(.setAsideBest(moved, reason: reason))
            bestToSetAside = nil
        }
        // A resume from a checkpoint whose evaluation was cut short (killed while "evaluating")
        // evaluates it first, so the best is the best of every evaluated step.
        if let evaluator = periodicEvaluator, resumedFrom != nil, trainer.step > 0,
            evaluator.isDue(step: trainer.step, lastStep: config.steps),
            !MetricsFile.rows(run.metrics).contains(where: {
                $0["kind"]?.string == "eval" && $0["step"]?.int == trainer.step && $0[MetricsFile.sourceKey] == nil
            })
        {
            let began = clock.now
            lastEvaluation = try evaluate(with: evaluator, in: run, commandLine: joinedCommandLine, notify)
            lastEvaluationSeconds = (clock.now - began).seconds
        }
        while trainer.step < config.steps && !shouldStop() {
            let report: StepReport
            do {
                report = try trainer.trainStep { try loader.next() }
                try checkReplicas()
            } catch let error as TrainingError {
                guard case .nonFinite = error else { throw error }
                throw TrainingRunError.nonFinite(error.description, savedIn: try saveCheckpoint().path)
            }
            if let skipped = report.skipped {
                notify(.skippedStep(step: trainer.step, reason: skipped))
                skippedInARow += 1
                if skippedInARow >= maximumConsecutiveSkips {
                    throw TrainingRunError.tooManySkips(skippedInARow, savedIn: try saveCheckpoint().path)
                }
            } else {
                skippedInARow = 0
            }
            recent = Array((recent + [report.seconds]).suffix(20))
            // The median: one stalled step (a paused process, a busy disk) does not swing the ETA.
            let secondsPerStep = recent.sorted()[recent.count / 2]
            let step = trainer.step
            let isLast = step == config.steps
            if step % config.logEvery == 0 || isLast {
                try run.log(step: step, imagesSeen: trainer.imagesSeen, report: report, secondsPerStep: secondsPerStep)
            }
            if step % config.sampleEvery == 0 || isLast {
                try run.writeSamples(trainer.samples(), step: step)
                if let picture = trainer.attentionPicture() { try run.writeAttention(picture, step: step) }
            }
            if step % config.checkpointEvery == 0 || isLast { _ = try saveCheckpoint() }
            if let evaluator = periodicEvaluator, evaluator.isDue(step: step, lastStep: config.steps) {
                let began = clock.now
                lastEvaluation = try evaluate(with: evaluator, in: run, commandLine: joinedCommandLine, notify)
                lastEvaluationSeconds = (clock.now - began).seconds
            }
            let evaluationsLeft = periodicEvaluator?.evaluations(after: step, lastStep: config.steps) ?? 0
            notify(
                .progress(
                    TrainingProgress(
                        step: step, steps: config.steps,
                        imagesPerSecond: Double(config.batchSize) / max(secondsPerStep, 1e-9),
                        secondsLeft: Double(config.steps - step) * secondsPerStep
                            + Double(evaluationsLeft) * lastEvaluationSeconds, report: report,
                        lastEvaluation: lastEvaluation)))
        }
        if trainer.step < config.steps {
            let file = try saveCheckpoint()
            try run.writeSamples(trainer.samples(), step: trainer.step)
            return .stopped(step: trainer.step, checkpoint: file)
        }
        return .finished(steps: trainer.step, seconds: (clock.now - start).seconds)
    }

    /// Evaluates the generator now (`--eval-every`): the record goes to metrics.jsonl and TensorBoard,
    /// and a new best to checkpoints/best.safetensors and run.json. Returns the deciding value.
    private func evaluate(
        with evaluator: PeriodicEvaluator, in run: RunDirectory, commandLine: String,
        _ notify: (TrainingRunEvent) -> Void
    ) throws -> (step: Int, metric: Metric, value: Double)? {
        let step = trainer.step
        notify(.evaluating(step: step))
        let (record, newBest) = try evaluator.evaluate(trainer)
        try run.logEvaluation(step: step, record: record)
        if let newBest {
            try run.saveBest(trainer, newBest, datasetDigest: dataset.sourceDigest, commandLine: commandLine)
        }
        notify(.evaluated(record, step: step, isBest: newBest != nil))
        let metric = evaluator.options.bestBy
        return record.value(of: metric).map { (step, metric, $0) }
    }

    /// The training loop of a rank other than 0: the same steps and collectives as rank 0's, and
    /// no files. Non-finite steps stop every rank alike (their losses and gradients are the same).
    private func trainWithoutFiles() throws -> TrainingOutcome {
        let config = trainer.config
        let loader = try batches()
        let clock = ContinuousClock()
        let start = clock.now
        var skippedInARow = 0
        try checkReplicas()
        while trainer.step < config.steps && !shouldStop() {
            let report = try trainer.trainStep { try loader.next() }
            try checkReplicas()
            skippedInARow = report.skipped == nil ? 0 : skippedInARow + 1
            if skippedInARow >= maximumConsecutiveSkips {
                throw TrainingRunError.tooManySkips(skippedInARow, savedIn: "rank 0's run folder")
            }
        }
        if trainer.step < config.steps {
            return .stopped(step: trainer.step, checkpoint: folder.appendingPathComponent("checkpoints"))
        }
        return .finished(steps: trainer.step, seconds: (clock.now - start).seconds)
    }

    /// Whether to stop before the next step: on every rank at the same step, when any rank was asked.
    private func shouldStop() -> Bool {
        guard let group = trainer.group else { return isStopRequested }
        return group.any(isStopRequested)
    }

    /// Under a group, every `replicaCheckEvery` steps (and at the start): compares a checksum of each
    /// parameter, buffer and Adam moment across ranks, and throws naming the first that differs.
    private func checkReplicas() throws {
        guard let group = trainer.group, trainer.step % replicaCheckEvery == 0 else { return }
        let state = trainer.stateTensors()
        let checksums = state.map { _, tensor in
            var crc = CRC32C()
            tensor.scalars.withUnsafeBytes { crc.update($0) }
            return crc.value
        }
        let (minimum, maximum) = group.extremes(checksums)
        if let index = checksums.indices.first(where: { minimum[$0] != maximum[$0] }) {
            throw TrainingRunError.replicasDiverged(step: trainer.step, tensor: state[index].0)
        }
    }

    // MARK: Stopping

    /// Asks the run to finish its step, save a checkpoint and return `.stopped` (from any thread).
    public func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    /// Whether this run was asked to stop, or the process got a stop signal (`StopSignals`).
    public var isStopRequested: Bool { stopFlag.load(ordering: .relaxed) || StopSignals.received != nil }

    /// Makes SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 stop every run in this process (see `StopSignals`).
    public static func stopOnSignals() { StopSignals.install() }
}
