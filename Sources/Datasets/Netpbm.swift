import FileFormats
import Foundation

/// PGM (P2/P5) and PPM (P3/P6) as docs/formats.md §5 describes them.
public enum Netpbm {
    /// The image and whether its samples had more than 8 bits (scaled to 8 bits).
    public static func decode(_ data: Data, path: String) throws -> (PixelImage, deep: Bool) {
        let bytes = [UInt8](data)
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), let kind = Array("2356".utf8).firstIndex(of: bytes[1])
        else {
            throw DataError(.unsupported, path, "not a PGM or PPM file")
        }
        let ascii = kind < 2
        let channels = (kind % 2 == 0) ? 1 : 3
        var position = 2
        func skipSpaceAndComments() {
            while position < bytes.count {
                if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count && bytes[position] != 0x0A && bytes[position] != 0x0D { position += 1 }
                } else if [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains(bytes[position]) {
                    position += 1
                } else {
                    return
                }
            }
        }
        func number(_ what: String) throws -> Int {
            skipSpaceAndComments()
            var value = 0
            var digits = 0
            while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                value = value * 10 + Int(bytes[position] - 0x30)
                guard value <= 1 << 30 else { throw DataError(.corrupt, path, "\(what) is absurdly large") }
                position += 1
                digits += 1
            }
            guard digits > 0 else {
                throw DataError(position >= bytes.count ? .truncated : .corrupt, path, "header: expected the \(what)")
            }
            return value
        }
        let width = try number("width")
        let height = try number("height")
        let maximum = try number("maximum value")
        guard width > 0, height > 0 else {
            throw DataError(.corrupt, path, "image of \(width)x\(height) pixels is empty")
        }
        guard width * height <= ImageCodec.maximumPixels else {
            throw DataError(
                .tooLarge, path,
                "image of \(width)x\(height) pixels exceeds the limit of \(ImageCodec.maximumPixels) pixels")
        }
        guard (1...65535).contains(maximum) else {
            throw DataError(.corrupt, path, "maximum value \(maximum) must be 1 to 65535")
        }
        let samples = width * height * channels
        // Check that the file can hold the raster before allocating for it: an ASCII sample takes at
        // least two bytes (a digit and a separator), a binary one one or two.
        func scaled(_ value: Int) -> UInt8 { UInt8((min(value, maximum) * 255 + maximum / 2) / maximum) }
        var pixels = [UInt8]()
        if ascii {
            skipSpaceAndComments()
            guard samples <= (bytes.count - position + 1) / 2 else {
                throw DataError(
                    .truncated, path,
                    "raster has \(max(0, bytes.count - position)) bytes, at least \(2 * samples - 1) needed")
            }
            pixels.reserveCapacity(samples)
            for _ in 0..<samples { pixels.append(scaled(try number("sample"))) }
        } else {
            position += 1  // exactly one whitespace byte after the maximum value
            let size = maximum < 256 ? 1 : 2
            guard position + samples * size <= bytes.count else {
                throw DataError(
                    .truncated, path, "raster has \(max(0, bytes.count - position)) bytes, \(samples * size) needed")
            }
            pixels = (0..<samples).map { index in
                let at = position + index * size
                return scaled(size == 1 ? Int(bytes[at]) : Int(bytes[at]) << 8 | Int(bytes[at + 1]))
            }
        }
        return (PixelImage(width: width, height: height, channels: channels, pixels: pixels), maximum > 255)
    }

    /// Binary P5 (1 channel) or P6 (3 channels) bytes.
    public static func encode(_ image: PixelImage) -> Data {
        require(
            image.channels == 1 || image.channels == 3, "Netpbm.encode: needs 1 or 3 channels, got \(image.channels)")
        var data = Data("\(image.channels == 1 ? "P5" : "P6")\n\(image.width) \(image.height)\n255\n".utf8)
        data.append(contentsOf: image.pixels)
        return data
    }
}
