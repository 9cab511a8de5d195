import Foundation

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N
/// bytes of JSON describing each tensor's dtype, shape and byte range, then the raw little-endian
/// data. Reading validates everything the reference reader does, so a damaged or hostile file is an
/// error, never a crash or a partial load.
public struct SafeTensorsFile: Sendable {
    /// Element types the format defines, with their sizes in bits.
    public enum DType: String, CaseIterable, Sendable {
        // swift-format-ignore: AlwaysUseLowerCamelCase
        // The names are the format's own: they are the raw values written in every header.
        case BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, F64,
            C64, I64, U64
        // swift-format-ignore: AlwaysUseLowerCamelCase
        case F4, F6_E2M3, F6_E3M2

        public var bitSize: Int {
            switch self {
            case .F4: return 4
            case .F6_E2M3, .F6_E3M2: return 6
            case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: return 8
            case .I16, .U16, .F16, .BF16: return 16
            case .I32, .U32, .F32: return 32
            case .F64, .I64, .U64, .C64: return 64
            }
        }

        /// The reference writer's order: wider and later types first.
        var writeRank: Int { DType.allCases.firstIndex(of: self)! }
    }

    public struct Entry: Sendable, Equatable {
        public let dtype: DType
        public let shape: [Int]
        /// Byte range within the data buffer.
        public let range: Range<Int>
    }

    /// The largest header the reference reader accepts.
    public static let maximumHeaderSize = 100_000_000

    public let metadata: [String: String]
    public let entries: [String: Entry]
    /// The whole file (memory-mapped when read from disk); tensor data starts at `dataStart`.
    private let file: Data
    private let dataStart: Int

    /// Tensor names in data order.
    public var names: [String] { entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }.map(\.key) }

    /// Reads and validates `url`.
    public init(contentsOf url: URL) throws {
        if let reason = PathKind(url.path).notAFile {
            throw SafeTensorsError.unreadable("it is \(reason)", file: url.path)
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError.unreadable(error.localizedDescription, file: url.path)
        }
        do {
            try self.init(data)
            try verifyChecksum()
        } catch let error as SafeTensorsError {
            throw error.inFile(url.path)
        }
    }

    /// The metadata key of the data checksum (`encode(raw:metadata:checksum:)`).
    public static let checksumKey = "data_crc32c"

    /// Checks the data against the `data_crc32c` metadata when the file has one.
    public func verifyChecksum() throws {
        guard let expected = metadata[Self.checksumKey] else { return }
        var crc = CRC32C()
        file.withUnsafeBytes { all in
            crc.update(UnsafeRawBufferPointer(rebasing: all[(dataStart - file.startIndex)...]))
        }
        guard String(crc.value, radix: 16) == expected else {
            throw SafeTensorsError.malformed(
                "the tensor data do not match the file's checksum (CRC-32C \(String(crc.value, radix: 16)), "
                    + "recorded \(expected)): the file was damaged after it was written")
        }
    }

    /// Throws `nonFinite` naming the first F32 tensor that holds a NaN or an infinity.
    public func checkFinite() throws {
        for name in names where entries[name]?.dtype == .F32 {
            let finite = try withBytes(of: name) { bytes in
                stride(from: 0, to: bytes.count, by: 4).allSatisfy {
                    bytes.loadUnaligned(fromByteOffset: $0, as: Float.self).isFinite
                }
            }
            guard finite else { throw SafeTensorsError.nonFinite(name) }
        }
    }

    /// Parses and validates a whole file's bytes.
    public init(_ data: Data) throws {
        guard data.count >= 8 else {
            throw SafeTensorsError.malformed("file of \(data.count) bytes is too small for a safetensors header")
        }
        let headerSize = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard headerSize <= UInt64(Self.maximumHeaderSize) else {
            throw SafeTensorsError.malformed(
                "header length \(headerSize) exceeds the limit of \(Self.maximumHeaderSize) bytes")
        }
        let headerEnd = 8 + Int(headerSize)
        guard headerEnd <= data.count else {
            throw SafeTensorsError.malformed(
                "truncated: header says \(headerSize) bytes but the file has \(data.count - 8) after the length")
        }
        let headerBytes = data.subdata(in: data.startIndex + 8..<data.startIndex + headerEnd)
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw SafeTensorsError.malformed("header does not start with '{'")
        }
        guard let header = (try? JSONValue(parsing: headerBytes))?.object else {
            throw SafeTensorsError.malformed("header is not a JSON object")
        }
        let bufferCount = data.count - headerEnd
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let fields = value.object, let strings = Optional(fields.compactMapValues(\.string)),
                    strings.count == fields.count
                else {
                    throw SafeTensorsError.malformed("__metadata__ must map strings to strings")
                }
                metadata = strings
                continue
            }
            entries[name] = try Self.entry(name, value)
        }
        // The tensors must tile the buffer exactly: no gaps, no overlaps, nothing outside.
        var expectedStart = 0
        for (name, entry) in entries.sorted(by: {
            ($0.value.range.lowerBound, $0.value.range.upperBound) < (
                $1.value.range.lowerBound, $1.value.range.upperBound
            )
        }) {
            guard entry.range.lowerBound == expectedStart else {
                throw SafeTensorsError.malformed(
                    "tensor \"\(name)\": data offsets \(entry.range.lowerBound)..<\(entry.range.upperBound) "
                        + (entry.range.lowerBound < expectedStart
                            ? "overlap the previous tensor" : "leave a gap after byte \(expectedStart)"))
            }
            expectedStart = entry.range.upperBound
        }
        guard expectedStart == bufferCount else {
            throw SafeTensorsError.malformed(
                expectedStart > bufferCount
                    ? "truncated: tensors need \(expectedStart) data bytes, the file has \(bufferCount)"
                    : "the data buffer has \(bufferCount - expectedStart) bytes after the last tensor")
        }
        self.metadata = metadata
        self.entries = entries
        self.file = data
        self.dataStart = data.startIndex + headerEnd
    }

    private static func entry(_ name: String, _ value: JSONValue) throws -> Entry {
        guard let fields = value.object else {
            throw SafeTensorsError.malformed("tensor \"\(name)\": description is not a JSON object")
        }
        guard let dtypeName = fields["dtype"]?.string else {
            throw SafeTensorsError.malformed("tensor \"\(name)\": missing dtype")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafeTensorsError.malformed("tensor \"\(name)\": unknown dtype \"\(dtypeName)\"")
        }
        guard let shapeValues = fields["shape"]?.array, let shape = integers(shapeValues),
            shape.allSatisfy({ $0 >= 0 })
        else {
            throw SafeTensorsError.malformed("tensor \"\(name)\": shape must be a list of non-negative integers")
        }
        guard let offsetValues = fields["data_offsets"]?.array, let offsets = integers(offsetValues),
            offsets.count == 2,
            offsets[0] >= 0, offsets[0] <= offsets[1]
        else {
            throw SafeTensorsError.malformed(
                "tensor \"\(name)\": data_offsets must be [begin, end] with 0 ≤ begin ≤ end")
        }
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= Int.max / 64 else {
                throw SafeTensorsError.malformed("tensor \"\(name)\": shape \(shape) is too large")
            }
            elements = product
        }
        guard (elements * dtype.bitSize) % 8 == 0, offsets[1] - offsets[0] == elements * dtype.bitSize / 8 else {
            throw SafeTensorsError.malformed(
                "tensor \"\(name)\": \(offsets[1] - offsets[0]) bytes do not hold shape \(shape) of \(dtype.rawValue)")
        }
        return Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
    }

    /// Integers from JSON numbers, or nil if any is not a whole number.
    private static func integers(_ values: [JSONValue]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            guard let number = value.int, abs(number) <= 9_000_000_000_000_000 else { return nil }
            result.append(number)
        }
        return result
    }

    /// The named tensor's entry, checked to be F32 (the engine's one element type).
    public func f32Entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else { throw SafeTensorsError.missingTensor(name) }
        guard entry.dtype == .F32 else {
            throw SafeTensorsError.wrongDType(name, found: entry.dtype.rawValue, expected: "F32")
        }
        return entry
    }

    /// The named F32 tensor's elements, in row-major order.
    public func f32Scalars(_ name: String) throws -> [Float] {
        let entry = try f32Entry(name)
        var scalars = [Float](repeating: 0, count: entry.range.count / 4)
        scalars.withUnsafeMutableBytes { destination in
            _ = file.copyBytes(
                to: destination, from: dataStart + entry.range.lowerBound..<dataStart + entry.range.upperBound)
        }
        // The format is little-endian, as is every platform this builds for.
        return scalars
    }

    /// Calls `body` with the raw little-endian bytes of the named tensor, without copying them
    /// (for memory-mapped files the pages are read on demand).
    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let entry = entries[name] else { throw SafeTensorsError.missingTensor(name) }
        return try file.withUnsafeBytes { all in
            try body(
                UnsafeRawBufferPointer(
                    rebasing: all[
                        (dataStart - file.startIndex + entry.range.lowerBound)..<(dataStart - file.startIndex
                            + entry.range.upperBound)]))
        }
    }

    /// A tensor to write: a name, its dtype and shape, and its raw little-endian bytes.
    public struct RawTensor: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let bytes: Data

        public init(name: String, dtype: DType, shape: [Int], bytes: Data) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// An F32 tensor of `shape` holding `scalars`.
        public init(name: String, shape: [Int], scalars: [Float]) {
            self.init(name: name, dtype: .F32, shape: shape, bytes: scalars.withUnsafeBytes { Data($0) })
        }
    }

    /// The bytes of a file holding tensors of any dtype.
    /// With `checksum`, the metadata gets `data_crc32c`: the CRC-32C of the data buffer, which
    /// `init(contentsOf:)` verifies, so a flipped bit in tensor data is an error, not a silent change.
    public static func encode(raw tensors: [RawTensor], metadata: [String: String] = [:], checksum: Bool = false)
        throws -> Data
    {
        var seen = Set<String>()
        for tensor in tensors {
            guard tensor.name != "__metadata__", seen.insert(tensor.name).inserted else {
                throw SafeTensorsError.malformed("tensor name \"\(tensor.name)\" is reserved or repeated")
            }
            let bits = tensor.shape.reduce(1, *) * tensor.dtype.bitSize
            guard bits % 8 == 0, bits / 8 == tensor.bytes.count else {
                throw SafeTensorsError.malformed(
                    "tensor \"\(tensor.name)\": \(tensor.bytes.count) bytes do not hold shape \(tensor.shape) of "
                        + "\(tensor.dtype.rawValue)"
                )
            }
        }
        let ordered = tensors.sorted {
            $0.dtype.writeRank != $1.dtype.writeRank
                ? $0.dtype.writeRank > $1.dtype.writeRank
                : Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8))
        }
        var metadata = metadata
        if checksum {
            var crc = CRC32C()
            for tensor in ordered { tensor.bytes.withUnsafeBytes { crc.update($0) } }
            metadata[Self.checksumKey] = String(crc.value, radix: 16)
        }
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
                .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in ordered {
            let bytes = tensor.bytes.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            parts.append(
                "\(jsonString(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],"
                    + "\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array("{\(parts.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var data = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for tensor in ordered { data.append(tensor.bytes) }
        return data
    }

    /// Writes a file of `tensors` and `metadata` atomically (see `writeAtomically`).
    public static func write(raw tensors: [RawTensor], metadata: [String: String] = [:], to url: URL) throws {
        try writeAtomically(try encode(raw: tensors, metadata: metadata), to: url)
    }

    /// JSON string literal with the escapes JSON requires.
    private static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
