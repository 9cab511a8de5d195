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

    /// A metric where higher is better (recall) picks the best checkpoint the other way round.
    @Test func aScorePicksTheHighestAsBest() throws {
        guard weightsArePresent() else { return }
        let work = try Workspace("periodic-score")
        defer { work.remove() }
        var options = evaluation(work, every: 1)
        options.evaluation.metrics = [.kid, .precisionRecall]
        options.bestBy = .precisionRecall
        let folder = try run(work, "score", steps: 3, evaluation: options)
        let recalls = try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { line -> (step: Int, recall: Double)? in
                let row = try JSONValue(parsing: String(line))
                guard row["kind"]?.string == "eval" else { return nil }
                return (try #require(row["step"]?.int), try #require(row["recall"]?.double))
            }
        #expect(recalls.map(\.step) == [1, 2, 3])
        let recorded = try #require(RunDirectory.bestEvaluation(in: folder))
        let highest = try #require(recalls.max { $0.recall < $1.recall }?.recall)
        #expect(recorded.metric == .precisionRecall && recorded.value == highest, "\(recalls) vs \(recorded)")
        // Ties keep the first step that reached the value.
        #expect(recalls.first { $0.recall == highest }?.step == recorded.step)
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

    /// A run killed while evaluating step 4 (its checkpoint saved, its row not): the resume
    /// evaluates step 4 first, so the rows and the best are those of a run never interrupted.
    @Test func aResumeEvaluatesTheStepWhoseEvaluationWasCut() throws {
        guard weightsArePresent() else { return }
        let work = try Workspace("periodic-cut")
        defer { work.remove() }
        let straight = try run(work, "straight", steps: 6, evaluation: evaluation(work, every: 2))
        _ = try run(work, "cut", steps: 2, evaluation: evaluation(work, every: 2))
        _ = try run(work, "cut", steps: 4, evaluation: nil, resume: true)  // step 4 saved, not evaluated
        let cut = try run(work, "cut", steps: 6, evaluation: evaluation(work, every: 2), resume: true)
        let expected = try evaluationRows(straight)
        #expect(expected.map(\.step) == [2, 4, 6])
        let rows = try evaluationRows(cut)
        #expect(rows.map(\.step) == expected.map(\.step) && rows.map(\.kid) == expected.map(\.kid))
        #expect(RunDirectory.bestEvaluation(in: cut) == RunDirectory.bestEvaluation(in: straight))
    }

    /// A best measured another way (another N), or damaged, is moved aside and reported, never
    /// silently replaced; run.json says where it went.
    @Test func aBestThatCannotStayIsMovedAside() throws {
        guard weightsArePresent() else { return }
        let work = try Workspace("periodic-aside")
        defer { work.remove() }
        let folder = try run(work, "run", steps: 2, evaluation: evaluation(work, every: 2))
        let first = try #require(RunDirectory.bestEvaluation(in: folder))
        let bestFile = folder.appendingPathComponent("checkpoints/best.safetensors")
        let firstBytes = try Data(contentsOf: bestFile)
        var other = evaluation(work, every: 2)
        other.evaluation.count = 6
        var events: [String] = []
        var options = work.options(steps: 4, run: "run")
        (options.overrides.ema, options.overrides.checkpointEvery, options.overrides.keepCheckpoints) = (true, 2, 1)
        (options.evaluation, options.resume) = (other, .auto)
        _ = try TrainingRun(options, dataset: work.dataset).train(commandLine: ["test"]) { event in
            if case .setAsideBest(let file, let reason) = event {
                events.append("\(file.lastPathComponent): \(reason)")
            }
        }
        let aside = folder.appendingPathComponent("checkpoints/best-kid-n8-seed0-step-000002.safetensors")
        #expect(try Data(contentsOf: aside) == firstBytes, "\(events)")
        #expect(events.count == 1 && events[0].contains("N=8") && events[0].contains("N=6"), "\(events)")
        let now = try #require(RunDirectory.bestEvaluation(in: folder))
        #expect(now.comparableUnder.contains("N=6") && first.comparableUnder.contains("N=8"))
        let info = try JSONValue(parsing: Data(contentsOf: folder.appendingPathComponent("run.json")))
        #expect(info["set_aside"]?.array?.first?["file"]?.string == "checkpoints/" + aside.lastPathComponent)
        #expect(info["best"]?["comparableUnder"]?.string == now.comparableUnder)

        // A damaged best: one flipped byte in its tensor data.
        var damaged = try Data(contentsOf: bestFile)
        damaged[damaged.count - 3] ^= 0x40
        try damaged.write(to: bestFile)
        events = []
        options.overrides.steps = 6
        _ = try TrainingRun(options, dataset: work.dataset).train(commandLine: ["test"]) { event in
            if case .setAsideBest(let file, let reason) = event {
                events.append("\(file.lastPathComponent): \(reason)")
            }
        }
        #expect(events.count == 1 && events[0].hasPrefix("best-damaged.safetensors: damaged"), "\(events)")
        #expect(try Data(contentsOf: folder.appendingPathComponent("checkpoints/best-damaged.safetensors")) == damaged)
        #expect(RunDirectory.bestEvaluation(in: folder) != nil, "a new best after the damaged one")
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
            #expect("\(error)".contains("evaluation.count 17"), "\(error)")
        }
        var missing = evaluation(work, every: 2)
        missing.realPath = work.folder.appendingPathComponent("nowhere").path
        options.evaluation = missing
        do { _ = try TrainingRun(options, dataset: work.dataset) } catch {
            #expect("\(error)".contains("evaluation.real") && "\(error)".contains("nowhere"), "\(error)")
        }
        var wrongBest = evaluation(work, every: 2)
        wrongBest.bestBy = .fid
        options.evaluation = wrongBest
        #expect(throws: ConfigurationError.self) { try TrainingRun(options, dataset: work.dataset) }
        #expect(!FileManager.default.fileExists(atPath: options.folder!.path), "a refused run creates no folder")
    }
}
