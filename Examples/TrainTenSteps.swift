import Datasets
import Foundation
import GAN

/// Trains the tiny32 preset for 10 steps on `dataset`, into the run folder `folder` (checkpoints,
/// samples, metrics.jsonl and TensorBoard events, as `sagan train` writes them).
func trainTenSteps(on dataset: PackedDataset, into folder: URL) throws -> TrainingOutcome {
    // snippet: train
    var options = TrainingRunOptions()
    options.preset = .tiny32
    options.folder = folder
    options.overrides.steps = 10
    options.overrides.batchSize = 16
    let run = try TrainingRun(options, dataset: dataset)
    let outcome = try run.train(commandLine: ["sagan-examples"]) { event in
        if case .progress(let progress) = event { print("step \(progress.step): loss D \(progress.report.lossD)") }
    }
    // end snippet
    return outcome
}
