import FileFormats
import Foundation
import Hummingbird
import NIOCore

/// Server-sent events for a run that may still be training: new rows of metrics.jsonl as they are
/// appended ("metrics"), the picture and checkpoint lists when they change ("pictures",
/// "checkpoints"), and "reset" with the whole log when it was cut back (a resume drops the rows after
/// its step).
/// Each metrics event's id is the log's length so far; a browser reconnecting sends it back as
/// Last-Event-ID and continues from there. A stream lasts `lifetime` seconds, then the browser
/// reconnects: a stopping server never waits long for it.
struct LiveUpdates: Sendable {
    let run: String
    let folder: URL
    let catalog: RunCatalog
    var interval: Duration = .milliseconds(500)
    var lifetime: Duration = .seconds(20)

    /// The JSON {"from", "length", "rows"} of the complete lines in `bytes`, which start at byte `from`
    /// of the log; rows are the log's own lines, not re-encoded. `length` is where the next read starts.
    static func metricsJSON(_ bytes: Data, from: Int) -> (json: Data, length: Int) {
        let end = bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? bytes.startIndex
        let lines = bytes[bytes.startIndex..<end].split(separator: UInt8(ascii: "\n"))
            .filter { $0.first == UInt8(ascii: "{") }
        let length = from + (end - bytes.startIndex)
        var json = Data("{\"from\":\(from),\"length\":\(length),\"rows\":[".utf8)
        for (index, line) in lines.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            json.append(contentsOf: line)
        }
        json.append(contentsOf: Data("]}".utf8))
        return (json, length)
    }

    /// The log's size and the bytes after `offset` (empty when it has not grown, or is not there).
    static func read(_ file: URL?, after offset: Int) -> (size: Int, bytes: Data) {
        guard offset >= 0, let file, PathKind(file.path) == .regularFile,
            let handle = try? FileHandle(forReadingFrom: file)
        else { return (0, Data()) }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        guard size > offset, (try? handle.seek(toOffset: UInt64(offset))) != nil else { return (size, Data()) }
        return (size, (try? handle.readToEnd()) ?? Data())
    }

    func response(resumingAt from: Int?) -> Response {
        let updates = self
        let body = ResponseBody { writer in
            // Resolved on every read: the log may appear later, and must stay a regular file in the run.
            let metrics = { updates.catalog.file("metrics.jsonl", of: updates.folder) }
            var offset = from ?? 0
            var pictures = updates.catalog.pictures(of: updates.run)
            var checkpoints = updates.checkpointNames()
            let clock = ContinuousClock()
            let end = clock.now + updates.lifetime
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            while clock.now < end {
                let (size, bytes) = Self.read(metrics(), after: offset)
                if size < offset {
                    // Cut back by a resume: the whole log again, which replaces what the page has.
                    let (json, length) = Self.metricsJSON(Self.read(metrics(), after: 0).bytes, from: 0)
                    offset = length
                    try await writer.write(Self.event("reset", json, id: length))
                } else if case (let json, let length) = Self.metricsJSON(bytes, from: offset), length > offset {
                    offset = length
                    try await writer.write(Self.event("metrics", json, id: length))
                }
                if let now = updates.catalog.pictures(of: updates.run), now != pictures {
                    try await writer.write(Self.event("pictures", try JSONEncoder().encode(now)))
                    pictures = now
                }
                if case let names = updates.checkpointNames(), names != checkpoints {
                    try await writer.write(Self.event("checkpoints", Data("{}".utf8)))
                    checkpoints = names
                }
                try await Task.sleep(for: updates.interval)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .connection: "keep-alive"],
            body: body)
    }

    func checkpointNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("checkpoints").path))
            ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
    }

    static func event(_ name: String, _ data: Data, id: Int? = nil) -> ByteBuffer {
        var text = "event: \(name)\n"
        if let id { text += "id: \(id)\n" }
        text += "data: " + String(decoding: data, as: UTF8.self) + "\n\n"
        return ByteBuffer(string: text)
    }
}
