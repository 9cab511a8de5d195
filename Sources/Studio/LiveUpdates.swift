import Foundation
import Hummingbird
import NIOCore

/// Server-sent events for a run that may still be training: new rows of metrics.jsonl as they are
/// appended ("metrics"), the picture and checkpoint lists when they change ("pictures",
/// "checkpoints"), and "reset" when the log was cut back (a resume drops the rows after its step).
/// Each metrics event's id is the log's length so far; a browser reconnecting sends it back as
/// Last-Event-ID and continues from there. A stream lasts `lifetime` seconds, then the browser
/// reconnects: a stopping server never waits long for it.
struct LiveUpdates: Sendable {
    let run: String
    let folder: URL
    let catalog: RunCatalog
    var interval: Duration = .milliseconds(500)
    var lifetime: Duration = .seconds(20)

    /// The JSON {"from", "length", "rows"} of the complete lines of `data` after byte `from`; rows are
    /// the log's own lines, not re-encoded.
    static func metricsJSON(_ data: Data, from: Int) -> (json: Data, length: Int) {
        let start = data.startIndex + min(max(0, from), data.count)
        let end = data[start...].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? start
        let lines = data[start..<end].split(separator: UInt8(ascii: "\n")).filter { $0.first == UInt8(ascii: "{") }
        var json = Data("{\"from\":\(start - data.startIndex),\"length\":\(end - data.startIndex),\"rows\":[".utf8)
        for (index, line) in lines.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            json.append(contentsOf: line)
        }
        json.append(contentsOf: Data("]}".utf8))
        return (json, end - data.startIndex)
    }

    func response(resumingAt from: Int?) -> Response {
        let updates = self
        let body = ResponseBody { writer in
            let metrics = updates.folder.appendingPathComponent("metrics.jsonl")
            var offset = from ?? 0
            var pictures = updates.catalog.pictures(of: updates.run)
            var checkpoints = updates.checkpointNames()
            let clock = ContinuousClock()
            let end = clock.now + updates.lifetime
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            while clock.now < end {
                let data = (try? Data(contentsOf: metrics)) ?? Data()
                if data.count < offset {
                    offset = 0
                    try await writer.write(ByteBuffer(string: "event: reset\ndata: {}\n\n"))
                }
                let (json, length) = Self.metricsJSON(data, from: offset)
                if length > offset {
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
