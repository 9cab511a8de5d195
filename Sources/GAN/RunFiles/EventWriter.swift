import FileFormats
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// TensorBoard event files written natively (docs/formats.md §1): length-prefixed records with masked
/// CRC-32C, each an `Event` protobuf serialised by hand (no protobuf dependency).
public final class EventWriter {
    public let url: URL
    private let handle: FileHandle
    private let clock: () -> Double

    /// Creates `events.out.tfevents.<seconds>.<host>.<pid>.<uid>` in `folder` and writes the version
    /// event. `clock` gives wall times (seconds since 1970); tests fix it.
    public init(folder: URL, clock: @escaping () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.clock = clock
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let now = clock()
        let seconds = String(Int(now))
        let paddedSeconds = String(repeating: "0", count: max(0, 10 - seconds.count)) + seconds
        let name = "events.out.tfevents.\(paddedSeconds).\(String(cString: host)).\(getpid()).0"
        url = folder.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw TrainingError.eventFile(path: url.path)
        }
        handle = try FileHandle(forWritingTo: url)
        try write(Self.event(wallTime: now, step: nil, body: Protobuf.string(3, "brain.Event:2")))
    }

    deinit { try? handle.close() }

    /// Scalars for one step, in one event.
    public func scalars(_ values: [(tag: String, value: Float)], step: Int) throws {
        let summary = values.map { Protobuf.message(1, Protobuf.string(1, $0.tag) + Protobuf.float(2, $0.value)) }
            .reduce([], +)
        try write(Self.event(wallTime: clock(), step: step, body: Protobuf.message(5, summary)))
    }

    /// A PNG image; `colorspace` 1 gray, 3 RGB.
    public func image(tag: String, png: Data, width: Int, height: Int, colorspace: Int, step: Int) throws {
        let image =
            Protobuf.varint(1, UInt64(height)) + Protobuf.varint(2, UInt64(width))
            + Protobuf.varint(3, UInt64(colorspace))
            + Protobuf.bytes(4, [UInt8](png))
        let value = Protobuf.string(1, tag) + Protobuf.message(4, image)
        try write(Self.event(wallTime: clock(), step: step, body: Protobuf.message(5, Protobuf.message(1, value))))
    }

    /// Text shown by TensorBoard's text plugin (the resolved config, the command line).
    public func text(tag: String, _ text: String, step: Int) throws {
        let metadata = Protobuf.message(1, Protobuf.string(1, "text"))
        let tensor =
            Protobuf.varint(1, 7) + Protobuf.message(2, Protobuf.message(2, Protobuf.varint(1, 1)))
            + Protobuf.bytes(8, Array(text.utf8))
        let value =
            Protobuf.string(1, "\(tag)/text_summary") + Protobuf.message(9, metadata) + Protobuf.message(8, tensor)
        try write(Self.event(wallTime: clock(), step: step, body: Protobuf.message(5, Protobuf.message(1, value))))
    }

    public func flush() throws {
        do { try handle.synchronize() } catch { throw failure(error) }
    }

    /// A write error as a `FileWriteError` naming the event file.
    private func failure(_ error: any Error) -> FileWriteError {
        FileWriteError(file: url.path, reason: "cannot write TensorBoard events (\(error.localizedDescription))")
    }

    static func event(wallTime: Double, step: Int?, body: [UInt8]) -> [UInt8] {
        Protobuf.double(1, wallTime) + (step.map { Protobuf.varint(2, UInt64($0)) } ?? []) + body
    }

    /// One record: length, masked CRC of the length, data, masked CRC of the data.
    static func record(_ data: [UInt8]) -> [UInt8] {
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
        return length + littleEndian(CRC32C.masked(length)) + data + littleEndian(CRC32C.masked(data))
    }

    private func write(_ event: [UInt8]) throws {
        do { try handle.write(contentsOf: Self.record(event)) } catch { throw failure(error) }
    }

    private static func littleEndian(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
}

/// The protobuf wire format, just the field kinds events use.
enum Protobuf {
    static func encodeVarint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while value != 0
        return bytes
    }

    static func key(_ field: Int, _ wireType: Int) -> [UInt8] { encodeVarint(UInt64(field << 3 | wireType)) }
    static func varint(_ field: Int, _ value: UInt64) -> [UInt8] { key(field, 0) + encodeVarint(value) }
    static func double(_ field: Int, _ value: Double) -> [UInt8] {
        key(field, 1) + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
    }
    static func float(_ field: Int, _ value: Float) -> [UInt8] {
        key(field, 5) + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
    }
    static func bytes(_ field: Int, _ value: [UInt8]) -> [UInt8] {
        key(field, 2) + encodeVarint(UInt64(value.count)) + value
    }
    static func string(_ field: Int, _ value: String) -> [UInt8] { bytes(field, Array(value.utf8)) }
    static func message(_ field: Int, _ value: [UInt8]) -> [UInt8] { bytes(field, value) }
}
