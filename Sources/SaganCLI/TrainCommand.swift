import ArgumentParser
import Autodiff
import Collectives
import Datasets
import Evaluation
import Foundation
import GAN

extension TrainConfig.Loss: ExpressibleByArgument {}
extension TrainConfig.Update: ExpressibleByArgument {}
extension TrainConfig.NonFinitePolicy: ExpressibleByArgument {}

/// `sagan train`: the main job. The policies live in `TrainingRun`; this parses and prints.
struct TrainCommand: ParsableCommand, StopsOnSignals {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GAN; without --data, on Fashion-MNIST (Debian's dataset-fashion-mnist).",
        discussion: "Settings resolve in order: the preset's defaults, then --config (a JSON object of differences), "
            + "then flags.")

    @Option(help: "Model and training preset: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: ModelPreset?
    @Option(help: "A packed dataset (sagan dataset pack); default: Fashion-MNIST at 32x32.") var data: String?
    @Option(help: "The run folder (default: runs/NNNNN-PRESET).") var runDir: String?
    @Option(help: "Training steps (one step = D step(s) + G step).") var steps: Int?
    @Option(help: "Images per batch.") var batch: Int?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(
        help: ArgumentHelp(
            "auto: the newest valid checkpoint in the run folder; or a checkpoint file. A resumed run may change "
                + "--steps, --lr-g, --lr-d, --on-nan, the intervals and --keep; nothing else."))
    var resume: String?
    @Option(help: "A JSON file of settings that differ from the preset.") var config: String?
    @Flag(
        help: ArgumentHelp(
            "Print the resolved settings, parameter counts, seconds per step and peak memory over a few steps, "
                + "then exit."))
    var dryRun = false
    @Option(name: .customLong("lr-g"), help: "G's learning rate.") var learningRateG: Float?
    @Option(name: .customLong("lr-d"), help: "D's learning rate.") var learningRateD: Float?
    @Option(help: "D steps per G step.") var dSteps: Int?
    @Option(help: "hinge or non-saturating.") var loss: TrainConfig.Loss?
    @Option(help: "alternating (SAGAN) or simultaneous (the author's single pass).") var update: TrainConfig.Update?
    @Flag(help: "Keep an exponential moving average of G and sample from it.") var ema = false
    @Option(help: "Steps between log lines.") var logEvery: Int?
    @Option(help: "Steps between sample grids.") var sampleEvery: Int?
    @Option(help: "Steps between checkpoints.") var checkpointEvery: Int?
    @Option(help: "Checkpoints to keep.") var keep: Int?
    @Flag(help: "Mirror training images at random.") var flip = false
    @Flag(help: "Add the article's dequantisation noise to training images.") var dequantize = false
    @Option(
        name: .customLong("on-nan"),
        help: "stop: roll back, save and stop; skip: roll back, drop the batch, halve the learning rates.")
    var onNaN: TrainConfig.NonFinitePolicy?
    @Flag(help: "Class-conditional training (conditional batch norm in G, projection D); needs a dataset with labels.")
    var conditional = false
    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Under MPI: batch norm statistics over the whole global batch (a step equals the single-process "
                + "step); --no-sync-bn: each rank's slice only, as PyTorch DDP."))
    var syncBN = true
    @Option(help: "Under MPI: steps between the ranks' comparison of checksums of their whole state.")
    var replicaCheckEvery = 100
    @Option(
        help: ArgumentHelp(
            "Steps between evaluations of G (G-EMA with --ema) while training, as sagan eval computes them; "
                + "the best keeps checkpoints/best.safetensors."))
    var evalEvery: Int?
    @Option(help: "Metrics of those evaluations, comma-separated (\(Metric.list)); the first picks the best.")
    var evalMetrics = "kid"
    @Option(help: "Images per side in those evaluations.") var evalNum = 2000
    @Option(help: "Real images of those evaluations (default: the training set).") var evalReal: String?
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        if replicaCheckEvery < 1 {
            throw ValidationError("--replica-check-every must be at least 1, got \(replicaCheckEvery)")
        }
        if let evalEvery, evalEvery < 1 { throw ValidationError("--eval-every must be at least 1, got \(evalEvery)") }
        if evalEvery == nil && (evalReal != nil || evalMetrics != "kid" || evalNum != 2000) {
            throw ValidationError("--eval-metrics, --eval-num and --eval-real need --eval-every")
        }
    }

    /// The `--eval-*` flags as options, with the metric named first deciding the best checkpoint.
    func evaluationOptions() throws -> PeriodicEvaluationOptions? {
        guard let evalEvery else { return nil }
        var options = PeriodicEvaluationOptions(every: evalEvery)
        do {
            options.evaluation.metrics = try Metric.parseList(evalMetrics)
            options.bestBy = try Metric.parseList(String(evalMetrics.split(separator: ",").first ?? ""))[0]
        } catch let error as EvaluationError {
            throw ValidationError(
                "--eval-metrics: " + error.description.replacingOccurrences(of: "--metrics: ", with: ""))
        }
        options.evaluation.count = evalNum
        guard evalNum >= 2 else { throw ValidationError("--eval-num must be at least 2, got \(evalNum)") }
        options.realPath = evalReal
        return options
    }

    /// The flags as run options.
    var options: TrainingRunOptions {
        var options = TrainingRunOptions()
        options.preset = preset
        options.configFile = config.map { URL(fileURLWithPath: $0) }
        options.conditional = conditional
        options.folder = runDir.map { URL(fileURLWithPath: $0) }
        options.resume = resume.map { $0 == "auto" ? .auto : .checkpoint(URL(fileURLWithPath: $0)) }
        var overrides = TrainOverrides()
        overrides.steps = steps
        overrides.batchSize = batch
        overrides.seed = seed
        overrides.learningRateG = learningRateG
        overrides.learningRateD = learningRateD
        overrides.discriminatorSteps = dSteps
        overrides.loss = loss
        overrides.update = update
        overrides.ema = ema
        overrides.logEvery = logEvery
        overrides.sampleEvery = sampleEvery
        overrides.checkpointEvery = checkpointEvery
        overrides.keepCheckpoints = keep
        overrides.horizontalFlip = flip
        overrides.dequantize = dequantize
        overrides.onNonFinite = onNaN
        options.overrides = overrides
        options.synchronizedBatchNorm = syncBN
        options.replicaCheckEvery = replicaCheckEvery
        return options
    }

    func run() throws {
        // Before MPI starts: a stop signal during start-up must not kill a rank (USR1's default
        // action), but stop the run before its first step, with a checkpoint.
        TrainingRun.stopOnSignals()
        // Under an MPI launcher every rank runs this; rank 0 alone prints and writes files.
        let group = try MPIProcessGroup.joinIfLaunched()
        defer { group?.finalize() }
        do {
            try train(group: group.flatMap { $0.size > 1 ? $0 : nil })
        } catch let error as TrainingRunError where (group?.rank ?? 0) != 0 {
            // Rank 0 reports a start-up failure; the other ranks end quietly with the same status.
            if case .rankFailed = error { throw ExitCode(64) }
            throw TrainingRunError.rankFailed(rank: group?.rank ?? 0, message: error.description)
        }
    }

    func train(group: MPIProcessGroup?) throws {
        try engine.run {
            let isPrinting = (group?.rank ?? 0) == 0
            let launcher = group == nil ? nil : MPILauncher.parent()
            var progress = ProgressLine(plainInterval: 10)
            if group != nil {
                progress = ProgressLine(plainInterval: 10, isTerminal: launcher?.writesToTerminal ?? false)
            }
            var options = options
            options.group = group
            options.evaluation = try evaluationOptions()
            let run = try TrainingRun.starting(options, dataset: openDataset) { if isPrinting { show($0, &progress) } }
            let dataset = run.dataset
            if dryRun {
                let measured = try run.dryRun()
                return isPrinting ? try report(measured, dataset) : ()
            }
            guard isPrinting else {
                _ = try endingTheJobOnFailure(run, group) { try run.train(commandLine: CommandLine.arguments) }
                return
            }
            let trainer = run.trainer
            let config = trainer.config
            print(
                "training \(config.preset.rawValue) (G \(trainer.generator.parameterCount), "
                    + "D \(trainer.discriminator.parameterCount) parameters) on \(describe(dataset)), batch "
                    + "\(config.batchSize), "
                    + "\(config.steps) steps, backend \(Engine.backendName) in \(Engine.precision)"
                    + (group.map { " on \($0.size) ranks (\(config.batchSize / $0.size) images each)" } ?? "")
                    + "; run folder " + run.folder.path)
            if let launcher {
                // mpirun passes SIGUSR1 on to the ranks, but answers Ctrl-C and SIGTERM by killing them.
                print("to stop with a checkpoint: kill -USR1 \(launcher.pid)")
            }
            let outcome: TrainingOutcome
            do {
                outcome = try endingTheJobOnFailure(run, group) {
                    try run.train(commandLine: CommandLine.arguments) { show($0, &progress) }
                }
            } catch {
                progress.finish()
                throw error
            }
            progress.finish()
            switch outcome {
            case .stopped(let step, let checkpoint):
                print(
                    "stopped at step \(step); saved \(checkpoint.path) "
                        + "(continue with --resume auto --run-dir \(run.folder.path))")
            case .finished(let steps, let seconds):
                print(
                    "done: \(steps) steps in \(formatDuration(seconds)); samples in "
                        + "\(run.folder.appendingPathComponent("samples").path), checkpoints in "
                        + "\(run.folder.appendingPathComponent("checkpoints").path)")
                print("watch it with: tensorboard --logdir \(run.folder.path)")
            }
        }
    }

    /// "KID 0.01234 ± 0.00100, FID 45.678, SWD×10³ 3.21": the metrics of one evaluation.
    func summary(_ record: EvaluationRecord) -> String {
        record.orderedValues.map(\.value.summary).joined(separator: ", ")
    }

    func openDataset() throws -> PackedDataset {
        let url: URL
        if let data {
            url = URL(fileURLWithPath: data)
        } else {
            var progress = ProgressLine()
            url = try DefaultDataset.fashionMNIST { done, total in
                progress.update("packing Fashion-MNIST for first use: \(done)/\(total)")
            }
            progress.finish()
        }
        do {
            if let data {
                try InputKind.require(data, setting: .data, needs: "a pack (make one with sagan dataset pack)") {
                    $0 == .pack || $0 == .other  // other: the pack reader says what is wrong with it
                }
            }
            return try PackedDataset(contentsOf: url)
        } catch let error as DataError {
            throw flagged("--data", error)
        }
    }

    /// Prints what the run reports as it starts and trains.
    func show(_ event: TrainingRunEvent, _ progress: inout ProgressLine) {
        switch event {
        case .skippedCheckpoint(let file, let reason):
            print("warning: skipping unreadable checkpoint \(file.lastPathComponent): \(reason)")
        case .resumed(let file, let step): print("resuming from \(file.path) at step \(step)")
        case .noCheckpointFound(let folder): print("no checkpoint in \(folder.path); starting a new run")
        case .datasetDiffers(let checkpoint, let dataset):
            print(
                "warning: the dataset differs from the one this checkpoint was trained on "
                    + "(digest \(checkpoint.prefix(12)) vs \(dataset.prefix(12)))")
        case .skippedStep(let step, let reason):
            progress.finish()
            print("warning: step \(step): \(reason)")
        case .progress(let state):
            let report = state.report
            let quality = state.lastEvaluation.map {
                String(format: "  %@ %.4g @%d", $0.metric.name.uppercased(), $0.value, $0.step)
            }
            progress.update(
                "step \(state.step)/\(state.steps)  " + String(format: "%.1f", state.imagesPerSecond)
                    + " images/s  ETA "
                    + formatDuration(state.secondsLeft)
                    + String(
                        format: "  loss D %.3f G %.3f  D(real) %.2f D(fake) %.2f", report.lossD, report.lossG,
                        report.realLogit, report.fakeLogit) + (quality ?? ""),
                force: state.step == state.steps)
        case .evaluating(let step):
            progress.update("step \(step): evaluating \(evalMetrics) at N = \(evalNum)", force: true)
        case .evaluated(let record, let step, let isBest):
            progress.finish()
            print("step \(step): \(summary(record))" + (isBest ? " (best so far: checkpoints/best.safetensors)" : ""))
        case .setAsideBest(let file, let reason):
            progress.finish()
            print("warning: checkpoints/best.safetensors is \(reason); kept as \(file.path)")
        }
    }

    /// `body`, and when it fails on one rank of a group after training began (a full disk on rank 0),
    /// the message and the end of the whole job: the other ranks wait in a collective for ever, and
    /// MPI_Finalize would wait for them before the message was printed.
    func endingTheJobOnFailure<T>(_ run: TrainingRun, _ group: MPIProcessGroup?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            guard let group, group.size > 1, run.isTraining else { throw error }
            let message = Entry.badInputMessage(error)
            FileHandle.standardError.write(Data("Error: rank \(group.rank): \(message ?? "\(error)")\n".utf8))
            group.abort(status: message == nil ? 1 : 64)
        }
    }

    func report(_ dryRun: DryRunReport, _ dataset: PackedDataset) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(dryRun.config), as: UTF8.self))
        print(
            "G \(dryRun.generatorParameters) parameters, D \(dryRun.discriminatorParameters) parameters; "
                + "dataset \(dataset.count) images of \(dataset.width)x\(dataset.height)x\(dataset.channels)")
        let perStep = dryRun.secondsPerStep
        print(
            String(
                format:
                    "seconds per step: %.3f (median of %d after one warm-up), about %.0f images/s; %d steps ≈ %.1f h",
                perStep, dryRun.measuredSteps, Double(dryRun.config.batchSize) / perStep, dryRun.config.steps,
                perStep * Double(dryRun.config.steps) / 3600))
        print("peak resident memory: \(dryRun.peakResidentMegabytes) MiB")
        let memory = dryRun.memory
        let available = memory.availableBytes.map { "; \($0 >> 20) MiB available" } ?? ""
        print(
            "tensor memory at batch \(memory.batchSize): about \(memory.bytes >> 20) MiB "
                + "(\(memory.bytesPerImage >> 10) KiB per image)\(available)")
    }

    func describe(_ dataset: PackedDataset) -> String {
        "\(dataset.count) images of \(dataset.width)x\(dataset.height)x\(dataset.channels)"
    }
}

/// "1h05m", "3m07s" or "42s".
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
    return total >= 60 ? "\(total / 60)m\(String(format: "%02d", total % 60))s" : "\(total)s"
}
