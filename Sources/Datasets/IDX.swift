import Foundation

/// MNIST-style IDX files (docs/formats.md §4), plain or gzip-compressed.
public enum IDX {
    public struct Array: Sendable {
        /// Dimension sizes, outermost first.
        public let dimensions: [Int]
        /// Unsigned 8-bit elements (the only type image and label files use).
        public let values: [UInt8]
    }

    /// Whether `head` starts like an IDX file: two zero bytes, an element type (0x08 bytes, 0x09
    /// signed bytes, 0x0B shorts, 0x0C ints, 0x0D floats, 0x0E doubles) and 1 to 4 dimensions.
    public static func hasMagic(_ head: Data) -> Bool {
        let bytes = [UInt8](head.prefix(4))
        return bytes.count == 4 && bytes[0] == 0 && bytes[1] == 0
            && [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E].contains(bytes[2])
            && (1...4).contains(bytes[3])
    }

    /// Reads an IDX file of unsigned bytes (type 0x08).
    public static func read(_ path: String) throws -> Array {
        let raw: Data
        do {
            raw = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw DataError(.unreadable, path, "cannot read: \(error.localizedDescription)")
        }
        guard !raw.isEmpty else { throw DataError(.zeroByte, path, "empty file (0 bytes)") }
        let data = Gzip.isCompressed(raw) ? try Gzip.decompress(raw, path: path) : raw
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String) throws -> Array {
        let bytes = [UInt8](data.prefix(4))
        guard bytes.count == 4, bytes[0] == 0, bytes[1] == 0 else {
            throw DataError(.unsupported, path, "not an IDX file (bad magic)")
        }
        guard bytes[2] == 0x08 else {
            throw DataError(
                .unsupported, path,
                String(format: "IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)", bytes[2]))
        }
        let rank = Int(bytes[3])
        guard rank >= 1, data.count >= 4 + 4 * rank else {
            throw DataError(.truncated, path, "IDX header is cut short")
        }
        var dimensions: [Int] = []
        for axis in 0..<rank {
            let at = data.startIndex + 4 + 4 * axis
            dimensions.append(
                Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8 | Int(data[at + 3]))
        }
        let count = dimensions.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let start = 4 + 4 * rank
        guard data.count - start >= count else {
            throw DataError(
                .truncated, path, "IDX data has \(data.count - start) bytes, dimensions \(dimensions) need \(count)")
        }
        return Array(
            dimensions: dimensions, values: [UInt8](data[(data.startIndex + start)..<(data.startIndex + start + count)])
        )
    }

    /// The bytes of an IDX file of unsigned bytes.
    public static func encode(dimensions: [Int], values: [UInt8]) -> Data {
        var data = Data([0, 0, 0x08, UInt8(dimensions.count)])
        for size in dimensions {
            data.append(contentsOf: [
                UInt8(size >> 24 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF),
            ])
        }
        data.append(contentsOf: values)
        return data
    }
}
