import ArgumentParser
import Autodiff
import Datasets
import Foundation
import GAN
import Kernels
import NeuralNet
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension TrainConfig.Loss: ExpressibleByArgument {}
extension TrainConfig.Update: ExpressibleByArgument {}
extension TrainConfig.NonFinitePolicy: ExpressibleByArgument {}

/// Set by SIGINT/SIGTERM; the loop finishes its step, saves and exits.
let stopRequested = Atomic<Bool>(false)

/// `sagan train`: the main job.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GAN; without --data, on Fashion-MNIST (Debian's dataset-fashion-mnist).",
        discussion: "Settings resolve in order: the preset's defaults, then --config (a JSON object of differences), then flags.")

    @Option(help: "Model and training preset: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")).") var preset: ModelPreset?
    @Option(help: "A packed dataset (sagan dataset pack); default: Fashion-MNIST at 32x32.") var data: String?
    @Option(help: "The run folder (default: runs/NNNNN-PRESET).") var runDir: String?
    @Option(help: "Training steps (one step = D step(s) + G step).") var steps: Int?
    @Option(help: "Images per batch.") var batch: Int?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(help: "auto: the newest valid checkpoint in the run folder; or a checkpoint file.") var resume: String?
    @Option(help: "A JSON file of settings that differ from the preset.") var config: String?
    @Flag(help: "Print the resolved settings, parameter counts, seconds per step and peak memory over a few steps, then exit.") var dryRun = false
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
    @Option(name: .customLong("on-nan"), help: "stop: roll back, save and stop; skip: roll back, drop the batch, halve the learning rates.")
    var onNaN: TrainConfig.NonFinitePolicy?
    @Flag(help: "Class-conditional training (conditional batch norm in G, projection D); needs a dataset with labels.") var conditional = false
    @Option(help: "Threads for oneDNN (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { OneDNNBackend.shared?.setThreadCount(threads) }
        let dataset = try openDataset()
        let (trainer, runURL) = try prepareTrainer(dataset: dataset)
        if dryRun { return try dryRunReport(trainer, dataset) }
        try train(trainer, dataset, runURL)
    }

    // MARK: Setting up

    func openDataset() throws -> PackedDataset {
        let url: URL
        if let data {
            url = URL(fileURLWithPath: data)
        } else {
            var progress = ProgressLine()
            do {
                url = try DefaultDataset.fashionMNIST { done, total in progress.update("packing Fashion-MNIST for first use: \(done)/\(total)") }
            } catch let error as DataError {
                throw ValidationError(error.description)
            }
            progress.finish()
        }
        do {
            return try PackedDataset(contentsOf: url)
        } catch let error as DataError {
            throw ValidationError("--data: \(error.description)")
        }
    }

    func prepareTrainer(dataset: PackedDataset) throws -> (Trainer, URL) {
        let runURL = URL(fileURLWithPath: runDir ?? Self.nextRunFolder(preset: (preset ?? .tiny32).rawValue))
        if let resume {
            let candidates = resume == "auto" ? RunDirectory.checkpointFiles(in: runURL.appendingPathComponent("checkpoints")) : [URL(fileURLWithPath: resume)]
            for candidate in candidates {
                do {
                    let (trainer, digest) = try TrainingCheckpoint.load(candidate)
                    if let preset, preset != trainer.config.preset {
                        throw ValidationError("--resume: \(candidate.path) was trained with preset \(trainer.config.preset.rawValue), not \(preset.rawValue)")
                    }
                    try checkCompatible(trainer.config.model, dataset)
                    if digest != dataset.sourceDigest {
                        print("warning: the dataset differs from the one this checkpoint was trained on (digest \(digest.prefix(12)) vs \(dataset.sourceDigest.prefix(12)))")
                    }
                    print("resuming from \(candidate.path) at step \(trainer.step)")
                    return (try adjusted(trainer), runURL)
                } catch let error as SafeTensorsError {
                    guard resume == "auto" else { throw ValidationError("--resume: \(error.description)") }
                    print("warning: skipping unreadable checkpoint \(candidate.lastPathComponent): \(error.description)")
                }
            }
            if resume != "auto" { throw ValidationError("--resume: no checkpoint at \(resume)") }
            print("no checkpoint in \(runURL.path); starting a new run")
        }
        var settings: TrainConfig
        do {
            try checkSquare(dataset)
            settings = try TrainConfig.preset(preset ?? .tiny32, resolution: dataset.height, imageChannels: dataset.channels)
            if let config {
                let contents: Data
                do { contents = try Data(contentsOf: URL(fileURLWithPath: config)) } catch { throw ConfigurationError("--config \(config): cannot read the file") }
                settings = try settings.applying(jsonDifferences: contents, source: "--config \(config)")
            }
            apply(&settings)
            if conditional {
                guard dataset.hasLabels, dataset.labelNames.count >= 2 else {
                    throw ConfigurationError("--conditional: \(dataset.url.path) has no labels (pack a folder with one sub-folder per class, or an IDX file with its labels)")
                }
                settings.model.classCount = dataset.labelNames.count
            }
            try settings.validate()
            try checkCompatible(settings.model, dataset)
            guard settings.batchSize <= dataset.count else {
                throw ConfigurationError("batch size \(settings.batchSize) is larger than the dataset (\(dataset.count) images)")
            }
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        return (Trainer(config: settings), runURL)
    }

    /// Flags override everything else.
    func apply(_ settings: inout TrainConfig) {
        if let steps { settings.steps = steps }
        if let batch { settings.batchSize = batch }
        if let seed { settings.seed = seed }
        if let learningRateG { settings.learningRateG = learningRateG }
        if let learningRateD { settings.learningRateD = learningRateD }
        if let dSteps { settings.discriminatorSteps = dSteps }
        if let loss { settings.loss = loss }
        if let update { settings.update = update }
        if ema { settings.ema = true }
        if let logEvery { settings.logEvery = logEvery }
        if let sampleEvery { settings.sampleEvery = sampleEvery }
        if let checkpointEvery { settings.checkpointEvery = checkpointEvery }
        if let keep { settings.keepCheckpoints = keep }
        if flip { settings.horizontalFlip = true }
        if dequantize { settings.dequantize = true }
        if let onNaN { settings.onNonFinite = onNaN }
    }

    /// A resumed run keeps its settings; only the step count can grow.
    func adjusted(_ trainer: Trainer) throws -> Trainer {
        guard let steps, steps != trainer.config.steps else { return trainer }
        return trainer.withSteps(steps)
    }

    func checkSquare(_ dataset: PackedDataset) throws {
        guard dataset.height == dataset.width else {
            throw ConfigurationError("--data: images are \(dataset.width)x\(dataset.height); training needs square images (repack with --crop)")
        }
    }

    func checkCompatible(_ model: ModelConfig, _ dataset: PackedDataset) throws {
        guard model.resolution == dataset.height, model.resolution == dataset.width, model.imageChannels == dataset.channels else {
            throw ValidationError("--data: the dataset holds \(dataset.width)x\(dataset.height)x\(dataset.channels) images, the model makes \(model.resolution)x\(model.resolution)x\(model.imageChannels)")
        }
    }

    static func nextRunFolder(preset: String) -> String {
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: "runs")) ?? []
        let next = (existing.compactMap { Int($0.prefix(5)) }.max() ?? -1) + 1
        return "runs/" + String(format: "%05d", next) + "-" + preset
    }

    // MARK: Running

    func loader(for trainer: Trainer, _ dataset: PackedDataset) throws -> BatchLoader {
        let c = trainer.config
        return try BatchLoader(dataset: dataset, options: .init(batchSize: c.batchSize, seed: c.seed, horizontalFlip: c.horizontalFlip,
                                                               dequantize: c.dequantize), cursor: trainer.cursor)
    }

    func dryRunReport(_ trainer: Trainer, _ dataset: PackedDataset) throws {
        print(String(decoding: try Self.prettyEncoder.encode(trainer.config), as: UTF8.self))
        print("G \(trainer.generator.parameterCount) parameters, D \(trainer.discriminator.parameterCount) parameters; dataset \(dataset.count) images of \(dataset.width)x\(dataset.height)x\(dataset.channels)")
        let batches = try loader(for: trainer, dataset)
        var times: [Double] = []
        for _ in 0..<4 { times.append(try trainer.trainStep { try batches.next() }.seconds) }
        let measured = times.dropFirst().sorted()
        print(String(format: "seconds per step: %.3f (median of %d after one warm-up), about %.0f images/s; %d steps ≈ %.1f h",
                     measured[measured.count / 2], measured.count, Double(trainer.config.batchSize) / measured[measured.count / 2],
                     trainer.config.steps, measured[measured.count / 2] * Double(trainer.config.steps) / 3600))
        print("peak resident memory: \(peakResidentMegabytes()) MiB")
    }

    func train(_ trainer: Trainer, _ dataset: PackedDataset, _ runURL: URL) throws {
        let run = try RunDirectory(runURL)
        let commandLine = CommandLine.arguments
        try run.writeRunInfo(commandLine: commandLine, config: trainer.config, datasetPath: dataset.url.path, datasetDigest: dataset.sourceDigest)
        let config = trainer.config
        Self.catchStopSignals()
        print("training \(config.preset.rawValue) (G \(trainer.generator.parameterCount), D \(trainer.discriminator.parameterCount) parameters) on \(dataset.count) images of \(dataset.width)x\(dataset.height)x\(dataset.channels), batch \(config.batchSize), \(config.steps) steps, backend \(EngineContext.backend.name); run folder \(run.url.path)")
        let batches = try loader(for: trainer, dataset)
        var progress = ProgressLine(plainInterval: 10)
        let start = monotonicSeconds()
        let firstStep = trainer.step
        var recent: [Double] = []
        while trainer.step < config.steps && !stopRequested.load(ordering: .relaxed) {
            let report: StepReport
            do {
                report = try trainer.trainStep { try batches.next() }
            } catch let error as TrainingError {
                progress.finish()
                let file = try run.saveCheckpoint(trainer, datasetDigest: dataset.sourceDigest, commandLine: commandLine.joined(separator: " "), keep: config.keepCheckpoints)
                throw ValidationError("\(error.description); the last good state is saved in \(file.path)")
            }
            if let skipped = report.skipped {
                progress.finish()
                print("warning: step \(trainer.step): \(skipped)")
            }
            recent = Array((recent + [report.seconds]).suffix(20))
            let secondsPerStep = recent.reduce(0, +) / Double(recent.count)
            let step = trainer.step
            if step % config.logEvery == 0 || step == config.steps {
                try run.log(step: step, imagesSeen: trainer.imagesSeen, report: report, secondsPerStep: secondsPerStep)
            }
            if step % config.sampleEvery == 0 || step == config.steps {
                try run.writeSamples(trainer.samples(), step: step)
                if let picture = trainer.attentionPicture() { try run.writeAttention(picture, step: step) }
            }
            if step % config.checkpointEvery == 0 || step == config.steps {
                try run.saveCheckpoint(trainer, datasetDigest: dataset.sourceDigest, commandLine: commandLine.joined(separator: " "), keep: config.keepCheckpoints)
            }
            let done = step - firstStep
            let rate = Double(done * config.batchSize) / max(monotonicSeconds() - start, 1e-6)
            let eta = Double(config.steps - step) * secondsPerStep
            progress.update("step \(step)/\(config.steps)  " + String(format: "%.1f", rate) + " images/s  ETA " + Self.duration(eta)
                                + String(format: "  loss D %.3f G %.3f  D(real) %.2f D(fake) %.2f", report.lossD, report.lossG, report.realLogit, report.fakeLogit),
                            force: step == config.steps)
        }
        progress.finish()
        if stopRequested.load(ordering: .relaxed) {
            let file = try run.saveCheckpoint(trainer, datasetDigest: dataset.sourceDigest, commandLine: commandLine.joined(separator: " "), keep: config.keepCheckpoints)
            try run.writeSamples(trainer.samples(), step: trainer.step)
            print("stopped at step \(trainer.step); saved \(file.path) (continue with --resume auto --run-dir \(run.url.path))")
            return
        }
        print("done: \(trainer.step) steps in \(Self.duration(monotonicSeconds() - start)); samples in \(run.samples.path), checkpoints in \(run.checkpoints.path)")
        print("watch it with: tensorboard --logdir \(run.url.path)")
    }

    /// SIGINT and SIGTERM set `stopRequested`. They are unblocked first: a parent (a test runner, a
    /// supervisor) may have passed on a mask that blocks them.
    static func catchStopSignals() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in stopRequested.store(true, ordering: .relaxed) }
        }
    }

    static let prettyEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }()

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" : total >= 60 ? "\(total / 60)m\(String(format: "%02d", total % 60))s" : "\(total)s"
    }
}

/// The peak resident set size of this process (VmHWM).
func peakResidentMegabytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}
