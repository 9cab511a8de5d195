import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

/// `sagan train --eval-every` (issue 17): evaluating leaves training bit for bit as it was, gives
/// the numbers `sagan eval` gives for the checkpoint of that step, and keeps the best checkpoint.
@Suite("Evaluation during training", .serialized, .tags(.slow), .skippedInFastRuns)
struct PeriodicEvaluationTests {
    typealias Workspace = TrainingRunTests.Workspace

    /// Whether the FID Inception weights are in the cache; records an issue when they are not.
    func weightsArePresent() -> Bool {
        guard FileManager.default.fileExists(atPath: InceptionWeights.defaultURL.path) else {
            Issue.record("the FID Inception weights are missing: run `make test-deps` (scripts/export_inception.py)")
            return false
        }
        return true
    }

    /// KID on N = 8 (subsets of 4), features cached inside the workspace.
    func evaluation(_ work: Workspace, every: Int) -> PeriodicEvaluationOptions {
        var options = PeriodicEvaluationOptions(every: every)
        options.evaluation.count = 8
        options.evaluation.kidSubsets = 5
        options.evaluation.cacheFolder = work.folder.appendingPathComponent("cache")
        return options
    }

    func run(
        _ work: Workspace, _ name: String, steps: Int, evaluation: PeriodicEvaluationOptions?, resume: Bool = false
    )
        throws -> URL
    {
        var options = work.options(steps: steps, run: name)
        options.overrides.ema = true
        options.overrides.checkpointEvery = 2
        options.overrides.keepCheckpoints = 1
        options.evaluation = evaluation
        if resume { options.resume = .auto }
        _ = try TrainingRun(options, dataset: work.dataset).train(commandLine: ["test"])
        return options.folder!
    }

    func state(_ checkpoint: URL) throws -> [String: [Float]] {
        Dictionary(
            uniqueKeysWithValues: try TrainingCheckpoint.load(checkpoint).trainer.stateTensors().map {
                ($0.0, $0.1.scalars)
            })
    }

    /// The evaluation rows of a run's metrics.jsonl: step → KID.
    func evaluationRows(_ folder: URL) throws -> [(step: Int, kid: Double)] {
        try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { line in
                let row = try JSONValue(parsing: String(line))
                guard row["kind"]?.string == "eval" else { return nil }
                return (try #require(row["step"]?.int), try #require(row["kid"]?.double))
            }
    }

    @Test func evaluatingLeavesTrainingUnchangedAndKeepsTheBest() throws {
        guard weightsArePresent() else { return }
        let work = try Workspace("periodic")
        defer { work.remove() }
        let plain = try run(work, "plain", steps: 5, evaluation: nil)
        let evaluated = try run(work, "evaluated", steps: 5, evaluation: evaluation(work, every: 2))
        let last = "checkpoints/step-000005.safetensors"
        let expected = try state(plain.appendingPathComponent(last))
        let actual = try state(evaluated.appendingPathComponent(last))
        #expect(expected.keys.sorted() == actual.keys.sorted())
        for (name, values) in expected { #expect(actual[name] == values, "\(name) changed by evaluating") }

        // Steps 2 and 4, and the last: each once, as `sagan eval` would compute them for G-EMA.
        let rows = try evaluationRows(evaluated)
        #expect(rows.map(\.step) == [2, 4, 5])
        var options = evaluation(work, every: 2).evaluation
        options.metrics = [.kid]
        let loaded = try LoadedGenerator(contentsOf: evaluated.appendingPathComponent(last), ema: true)
        let afterwards = try Evaluator(options).evaluate(
            real: try ImageSet.open(work.dataset.url.path), fake: loaded.imageSet(name: "step 5", count: 8))
        #expect(afterwards.kid?.mean == rows.last?.kid, "live and after-the-fact KID of step 5 differ")

        // The best by KID is kept, outside --keep 1, and run.json says which step it is.
        let best = try #require(rows.min { $0.kid < $1.kid })
        let bestFile = evaluated.appendingPathComponent("checkpoints/best.safetensors")
        let recorded = try #require(RunDirectory.bestEvaluation(in: evaluated))
        #expect(recorded.step == best.step && recorded.value == best.kid && recorded.metric == .kid)
        #expect(try TrainingCheckpoint.load(bestFile).trainer.step == best.step)
        #expect(RunDirectory.checkpointFiles(in: evaluated.appendingPathComponent("checkpoints")).count == 1)
        let info = try JSONValue(parsing: Data(contentsOf: evaluated.appendingPathComponent("run.json")))
        let bestInfo = try #require(info["best"])
        #expect(bestInfo["step"]?.int == best.step && bestInfo["file"]?.string == "checkpoints/best.safetensors")

        // Resumed from step 4 after a kill that lost step 5's checkpoint: step 5 is evaluated again,
        // logged once, with the same KID, and the best of the first part carries over.
        try FileManager.default.removeItem(at: evaluated.appendingPathComponent(last))
        let resumed = try run(work, "evaluated", steps: 5, evaluation: evaluation(work, every: 2), resume: true)
        let again = try evaluationRows(resumed)
        #expect(again.map(\.step) == [2, 4, 5])
        #expect(again.map(\.kid) == rows.map(\.kid), "the resumed run evaluates as the first did")
        #expect(RunDirectory.bestEvaluation(in: resumed) == recorded)
        let resumedInfo = try JSONValue(parsing: Data(contentsOf: resumed.appendingPathComponent("run.json")))
        #expect(resumedInfo["best"]?["step"]?.int == best.step)
    }

    @Test func badEvaluationSettingsNameTheirFlag() throws {
        guard weightsArePresent() else { return }
        let work = try Workspace("periodic-bad")
        defer { work.remove() }
        var tooMany = evaluation(work, every: 2)
        tooMany.evaluation.count = 17
        var options = work.options(steps: 2)
        options.evaluation = tooMany
        #expect(throws: EvaluationError.self) { try TrainingRun(options, dataset: work.dataset) }
        do { _ = try TrainingRun(options, dataset: work.dataset) } catch {
            #expect("\(error)".contains("--eval-num 17"), "\(error)")
        }
        var missing = evaluation(work, every: 2)
        missing.realPath = work.folder.appendingPathComponent("nowhere").path
        options.evaluation = missing
        do { _ = try TrainingRun(options, dataset: work.dataset) } catch {
            #expect("\(error)".contains("--eval-real") && "\(error)".contains("nowhere"), "\(error)")
        }
        var wrongBest = evaluation(work, every: 2)
        wrongBest.bestBy = .fid
        options.evaluation = wrongBest
        #expect(throws: ConfigurationError.self) { try TrainingRun(options, dataset: work.dataset) }
        #expect(!FileManager.default.fileExists(atPath: options.folder!.path), "a refused run creates no folder")
    }
}
