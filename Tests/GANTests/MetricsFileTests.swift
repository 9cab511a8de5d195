import FileFormats
import Foundation
import GAN
import Testing

/// metrics.jsonl with several writers (issue 27): the trainer and `sagan eval` append at once, and
/// a resume truncates while they do.
@Suite("Metrics file")
struct MetricsFileTests {
    @Test func concurrentAppendsAndTruncationsLoseAndSpliceNothing() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("metrics.jsonl")
        let (writers, rows) = (4, 300)
        let padding = String(repeating: "x", count: 3000)  // rows longer than a pipe's atomic size
        DispatchQueue.concurrentPerform(iterations: writers + 1) { writer in
            if writer == writers {
                // A resume's truncation, again and again: drops the "drop" rows, keeps the rest.
                for _ in 0..<50 { try? MetricsFile.truncate(file) { $0["drop"] == nil } }
                return
            }
            for index in 0..<rows {
                let row: JSONValue = [
                    "writer": JSONValue(writer), "index": JSONValue(index), "pad": JSONValue(padding),
                ]
                try? MetricsFile.append(row, to: file)
                if index % 10 == 0 { try? MetricsFile.append(["drop": true, "writer": JSONValue(writer)], to: file) }
            }
        }
        try MetricsFile.truncate(file) { $0["drop"] == nil }
        let lines = try Data(contentsOf: file).split(separator: 0x0A)
        let parsed = lines.compactMap { try? JSONValue(parsing: $0) }
        #expect(parsed.count == lines.count, "spliced lines")
        #expect(parsed.count == writers * rows)
        for writer in 0..<writers {
            let indices = parsed.filter { $0["writer"]?.int == writer }.compactMap { $0["index"]?.int }
            #expect(indices == Array(0..<rows), "writer \(writer) lost rows")
        }
    }

    /// A resume drops the trainer's rows after its checkpoint, never another command's.
    @Test func truncationKeepsOtherCommandsRows() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("metrics.jsonl")
        for step in 1...10 { try MetricsFile.append(["step": JSONValue(step)], to: file) }
        try MetricsFile.append(["step": 10, "kind": "eval", "source": "sagan eval"], to: file)
        try MetricsFile.append(["step": 10, "kind": "eval"], to: file)
        try FileHandle(forWritingTo: file).seekToEnd()
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"step": 11, "Loss"#.utf8))  // a half-written last line
        try handle.close()
        try RunDirectory.truncateMetrics(in: folder, after: 8)
        let rows = MetricsFile.rows(file)
        #expect(rows.compactMap { $0["step"]?.int } == Array(1...8) + [10])
        #expect(rows.last?["source"]?.string == "sagan eval")
        #expect(try Data(contentsOf: file).last == 0x0A)
    }
}
