import Datasets
import Evaluation
import Foundation
import GAN

/// KID of the generator of `checkpoint` against `dataset`, on 100 images of each (a quick look;
/// docs/evaluation.md says which N to report).
func evaluate(_ checkpoint: URL, against dataset: PackedDataset) throws -> EvaluationRecord {
    // snippet: evaluate
    let loaded = try LoadedGenerator(contentsOf: checkpoint, ema: false)
    var evaluation = EvaluationOptions()
    evaluation.metrics = [.kid]
    evaluation.count = 100
    let record = try Evaluator(evaluation).evaluate(
        real: try ImageSet.open(dataset.url.path), fake: loaded.imageSet(name: "G", count: evaluation.count))
    if let kid = record.kid { print("KID \(kid.mean) ± \(kid.standardDeviation)") }
    // end snippet
    return record
}
