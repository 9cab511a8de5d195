import Autodiff
import Evaluation
import FileFormats
import Foundation
import GAN
import Testing

/// Numbers a run writes read back exactly (issue 27): a KID written to metrics.jsonl and run.json
/// is the KID that was computed, bit for bit, whoever reads it (the trainer, the studio, a test).
@Suite("Run file numbers")
struct RunFileNumbersTests {
    /// Finite Doubles from random bit patterns (every exponent, subnormals included) and the edges.
    static func doubles(count: Int) -> [Double] {
        var random = RandomGenerator(seed: 27)
        var values: [Double] = [
            0, -0.0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, .greatestFiniteMagnitude,
            Double.leastNormalMagnitude.nextDown, 0.3737361402788131, 0.3737361402788132,
        ]
        while values.count < count {
            let (a, b, _, _) = random.nextBlock()
            let value = Double(bitPattern: UInt64(a) << 32 | UInt64(b))
            if value.isFinite { values.append(value) }
        }
        return values
    }

    @Test func metricsRowsAndRunInfoKeepEveryDouble() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("numbers-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let values = Self.doubles(count: 100_000)
        let run = try RunDirectory(folder)
        var expected: [EvaluationRecord] = []
        for (row, start) in stride(from: 0, to: values.count, by: 3).enumerated() {
            var record = EvaluationRecord(real: "real", fake: "fake", count: 10, seed: 0)
            let part = values[start..<min(start + 3, values.count)].map { $0 }
            record.kid = .init(
                mean: part[0], standardDeviation: part.count > 1 ? part[1] : 0, subsets: 2, subsetSize: 5)
            record.fid = part.count > 2 ? part[2] : nil
            try run.logEvaluation(step: row, record: record)
            expected.append(record)
        }

        // Read back as the trainer and `sagan eval` do (Codable) and as the studio does (JSONValue).
        let lines = try Data(contentsOf: folder.appendingPathComponent("metrics.jsonl")).split(separator: 0x0A)
        #expect(lines.count == expected.count)
        for (line, record) in zip(lines, expected) {
            let decoded = try JSONDecoder().decode(EvaluationRecord.self, from: Data(line))
            #expect(decoded.kid?.mean.bitPattern == record.kid?.mean.bitPattern)
            #expect(decoded.kid?.standardDeviation.bitPattern == record.kid?.standardDeviation.bitPattern)
            #expect(decoded.fid?.bitPattern == record.fid?.bitPattern)
            let row = try JSONValue(parsing: line)
            #expect(row["kid"]?.double?.bitPattern == record.kid?.mean.bitPattern)
            #expect(row["fid"]?.double?.bitPattern == record.fid?.bitPattern)
        }

        // run.json keeps the recorded best through every resume, bit for bit.
        let best = try JSONValue(encoding: ["kid": values])
        let previous = JSONValue.object(["best": best]).serialized(pretty: true)
        let written = try RunDirectory.runInfo(
            previous: previous, commandLine: ["sagan"], config: try .preset(.tiny32, resolution: 32, imageChannels: 1),
            datasetPath: "d", datasetDigest: "x",
            precision: .fp32, resumedAt: 5, changes: [:])
        let again = try RunDirectory.runInfo(
            previous: written, commandLine: ["sagan"], config: try .preset(.tiny32, resolution: 32, imageChannels: 1),
            datasetPath: "d", datasetDigest: "x",
            precision: .fp32, resumedAt: 6, changes: [:])
        let read = try #require(try JSONValue(parsing: again)["best"]?["kid"]?.array)
        #expect(read.map { $0.double?.bitPattern } == values.map(\.bitPattern))
    }
}
