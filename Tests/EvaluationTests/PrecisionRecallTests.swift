import Autodiff
import Evaluation
import FileFormats
import Foundation
import TestSupport
import Testing

/// Improved precision and recall, density and coverage, against numpy and on cases with known answers.
@Suite("Precision and recall")
struct PrecisionRecallTests {
    /// Feature-like vectors: non-negative, correlated through a shared part, `shift` apart.
    static func features(_ n: Int, _ d: Int, shift: Float, seed: UInt64) -> [Float] {
        var random = RandomGenerator(seed: seed)
        var sharedRandom = RandomGenerator(seed: 99)
        let shared = sharedRandom.normal(count: d)
        let noise = random.normal(count: n * d)
        return (0..<(n * d)).map { max(0, shared[$0 % d] + noise[$0] + shift) * 0.3 }
    }

    @Test func aSetAgainstItselfIsFullyPreciseAndRecalled() {
        let real = Self.features(50, 16, shift: 0, seed: 1)
        let result = PrecisionRecall.compute(real: real, fake: real, dimension: 16, block: 7)
        #expect(result.precision == 1 && result.recall == 1 && result.coverage == 1, "\(result)")
        #expect(result.density >= 1, "every sample lies in its own ball and in k others' at least on average")
    }

    @Test func farApartSetsShareNothing() {
        let real = Self.features(40, 8, shift: 0, seed: 2)
        let fake = real.map { $0 + 100 }
        let result = PrecisionRecall.compute(real: real, fake: fake, dimension: 8)
        #expect(result == .init(precision: 0, recall: 0, density: 0, coverage: 0, k: 3))
    }

    /// A collapsed generator (every fake sample near one real one) keeps its precision and loses recall.
    @Test func modeCollapseLosesRecallNotPrecision() {
        let d = 32
        let real = Self.features(200, d, shift: 0, seed: 3)
        var random = RandomGenerator(seed: 4)
        let jitter = random.normal(count: 200 * d)
        let fake = (0..<(200 * d)).map { real[$0 % d] + 0.001 * jitter[$0] }
        let result = PrecisionRecall.compute(real: real, fake: fake, dimension: d)
        #expect(result.precision > 0.9 && result.recall < 0.1, "\(result)")
    }

    /// At the real dimension against numpy's exact float64 distances: the same fractions, to within one
    /// sample (a float32 distance can fall on the other side of a radius it ties to float64 rounding).
    @Test(.tags(.slow), .skippedInFastRuns) func agreesWithNumpy() throws {
        let d = 2048
        let (n, m) = (300, 250)
        let real = Self.features(n, d, shift: 0, seed: 5)
        let fake = Self.features(m, d, shift: 0.02, seed: 6)
        let folder = try temporaryFolder("pr")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("features.safetensors")
        try SafeTensorsFile.write(
            [("real", Tensor(shape: [n, d], scalars: real)), ("fake", Tensor(shape: [m, d], scalars: fake))], to: file)
        let (status, output) = try runReferenceScript("precision_recall.py", [file.path])
        try #require(status == 0, "precision_recall.py (needs python3-numpy): \(output)")
        func value(_ name: String) throws -> Double {
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix(name + " ") }, "\(output)")
            return try #require(Double(line.dropFirst(name.count + 1)))
        }
        let result = PrecisionRecall.compute(real: real, fake: fake, dimension: d, block: 64)
        #expect(Swift.abs(result.precision - (try value("precision"))) <= 1.0 / Double(m), "\(result) vs \(output)")
        #expect(Swift.abs(result.recall - (try value("recall"))) <= 1.0 / Double(n), "\(result) vs \(output)")
        #expect(Swift.abs(result.density - (try value("density"))) <= 1.0 / Double(m), "\(result) vs \(output)")
        #expect(Swift.abs(result.coverage - (try value("coverage"))) <= 1.0 / Double(n), "\(result) vs \(output)")
        #expect(result.precision > 0.05 && result.precision < 0.95, "the sets should overlap partly: \(result)")
    }

    @Test func recordsWriteAndReadTheirValues() throws {
        var record = EvaluationRecord(real: "r", fake: "f", count: 10, seed: 0)
        record.values[.precisionRecall] = PrecisionRecall.Result(
            precision: 0.625, recall: 0.375, density: 0.9, coverage: 0.5, k: 3)
        let line = try record.jsonLine()
        let text = String(decoding: line, as: UTF8.self)
        #expect(
            text.contains("\"precision\":0.625") && text.contains("\"recall\":0.375") && text.contains("\"pr_k\":3"))
        let decoded = try JSONDecoder().decode(EvaluationRecord.self, from: line)
        #expect(decoded == record && decoded.value(of: .precisionRecall) == 0.375)
        #expect(!Metric.precisionRecall.definition.lowerIsBetter)
    }
}
