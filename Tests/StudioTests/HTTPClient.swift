import FileFormats
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response as the tests read it.
struct HTTPReply {
    let status: Int
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The server's {"error": {"message"}}.
    var message: String? {
        (try? JSONValue(parsing: body))?["error"]?["message"]?.string
    }

    func json() throws -> JSONValue { try JSONValue(parsing: body) }
}

/// HTTP/1.1 over a plain socket, one request per connection: the tests send exactly the bytes they
/// mean, traversal attempts and malformed requests included (URLSession would normalise them).
struct HTTPClient {
    let port: Int

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Sends `raw` as is and reads until the server closes, or `until` is found in what arrived.
    func send(_ raw: Data, until marker: String? = nil, timeout: Double = 60) throws -> Data {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(socket) }
        var seconds = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect to port \(port): errno \(errno)") }
        var sent = 0
        while sent < raw.count {
            let count = raw.withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { break }  // the server may answer and close before reading everything
            sent += count
        }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return received
    }

    /// `send` on a thread of its own, off Swift's cooperative threads, which the server in the same
    /// process needs (and off Dispatch's, which grow slowly when their threads block).
    func exchange(_ raw: Data, until marker: String? = nil, timeout: Double = 60) async throws -> Data {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try send(raw, until: marker, timeout: timeout) }) }.start()
        }
    }

    func request(
        _ method: String, _ target: String, headers: [String: String] = [:], body: Data = Data(),
        until marker: String? = nil, timeout: Double = 60
    ) async throws -> HTTPReply {
        var head = "\(method) \(target) HTTP/1.1\r\n"
        if headers["Host"] == nil { head += "Host: 127.0.0.1:\(port)\r\n" }
        head += "Connection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        return try Self.parse(await exchange(Data((head + "\r\n").utf8) + body, until: marker, timeout: timeout))
    }

    func get(
        _ target: String, headers: [String: String] = [:], until marker: String? = nil, timeout: Double = 60
    ) async throws -> HTTPReply {
        try await request("GET", target, headers: headers, until: marker, timeout: timeout)
    }

    /// Status, headers and body (de-chunked) of a complete response.
    static func parse(_ data: Data) throws -> HTTPReply {
        guard let end = data.firstRange(of: Data("\r\n\r\n".utf8)) else {
            throw Failure(description: "no complete response head in \(data.count) bytes")
        }
        let lines = String(decoding: data[data.startIndex..<end.lowerBound], as: UTF8.self)
            .components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        var body = Data(data[end.upperBound...])
        if headers["transfer-encoding"] == "chunked" { body = dechunk(body) }
        return HTTPReply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: Data) -> Data {
        var output = Data()
        var index = data.startIndex
        while let lineEnd = data[index...].firstRange(of: Data("\r\n".utf8)) {
            let size = Int(String(decoding: data[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
            guard size > 0, lineEnd.upperBound + size <= data.endIndex else { break }
            output.append(data[lineEnd.upperBound..<(lineEnd.upperBound + size)])
            index = lineEnd.upperBound + size + 2
            guard index < data.endIndex else { break }
        }
        return output
    }
}
