import CImageCodecs
import FileFormats
import Foundation

/// The image file formats the tool reads.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg, png, pgm, ppm
    /// An entry of an MNIST-style IDX file (never sniffed from a file's first bytes).
    case idx

    /// The format the file's first bytes announce, if any.
    public static func sniff(_ data: Data) -> ImageFormat? {
        let head = [UInt8](data.prefix(8))
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if head.count >= 2 && head[0] == UInt8(ascii: "P") {
            switch head[1] {
            case UInt8(ascii: "2"), UInt8(ascii: "5"): return .pgm
            case UInt8(ascii: "3"), UInt8(ascii: "6"): return .ppm
            default: return nil
            }
        }
        return nil
    }

    /// The format a file name's extension claims.
    public static func fromExtension(_ path: String) -> ImageFormat? {
        switch (path as NSString).pathExtension.lowercased() {
        case "jpg", "jpeg", "jpe", "jfif": return .jpeg
        case "png": return .png
        case "pgm": return .pgm
        case "ppm", "pnm": return .ppm
        default: return nil
        }
    }
}

/// A decoded file and what it was before conversion.
public struct DecodedImage: Sendable {
    public let image: PixelImage
    public let format: ImageFormat
    /// "gray", "gray+alpha", "RGB", "RGBA", "CMYK" or "palette", with "16-bit" for deep PNGs.
    public let mode: String
    /// The EXIF orientation (1–8) that was applied, when the file had one other than 1.
    public let orientationApplied: Int?
    /// Recoverable decoder warnings (corrupt but decodable data).
    public let warnings: Int
}

/// Decoding and encoding of image files: JPEG (libjpeg-turbo), PNG (libpng), PGM/PPM.
public enum ImageCodec {
    /// Images with more pixels are refused before their pixels are allocated (20000x20000 is 400 M).
    public static let maximumPixels = 100_000_000

    /// Decodes `data` (named `path` in errors) whatever its extension says; `extensionFormat` mismatches are reported
    /// by the caller.
    public static func decode(_ data: Data, path: String) throws -> DecodedImage {
        guard !data.isEmpty else { throw DataError(.zeroByte, path, "empty file (0 bytes)") }
        guard let format = ImageFormat.sniff(data) else {
            throw DataError(
                .unsupported, path,
                "not a JPEG, PNG, PGM or PPM file (first bytes "
                    + "\(data.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")))"
            )
        }
        switch format {
        case .jpeg, .png:
            var raw = sagan_image()
            var message = [CChar](repeating: 0, count: 256)
            let status = data.withUnsafeBytes { bytes in
                format == .jpeg
                    ? sagan_jpeg_decode(
                        bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, maximumPixels, &raw, &message,
                        message.count)
                    : sagan_png_decode(
                        bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, maximumPixels, &raw, &message,
                        message.count)
            }
            defer {
                sagan_free(raw.pixels)
                sagan_free(raw.exif)
            }
            let reason = String(cString: message)
            guard status == 0 else {
                // A file that failed and lacks its end marker was cut short; otherwise it is corrupt.
                let kind: DataError.Kind =
                    status == 3
                    ? .tooLarge
                    : (reason.hasPrefix("truncated") || !hasEndMarker(data, format)) ? .truncated : .corrupt
                throw DataError(kind, path, "\(format == .jpeg ? "JPEG" : "PNG"): \(reason)")
            }
            var image = PixelImage(
                width: Int(raw.width), height: Int(raw.height), channels: Int(raw.channels),
                pixels: Array(UnsafeBufferPointer(start: raw.pixels, count: Int(raw.width * raw.height * raw.channels)))
            )
            var orientation: Int?
            if let exif = raw.exif, raw.exif_size > 0 {
                let value = Exif.orientation(Data(bytes: exif, count: raw.exif_size))
                if let value, value != 1 {
                    image = Exif.apply(orientation: value, to: image)
                    orientation = value
                }
            }
            let mode: String
            switch raw.source_kind {
            case SAGAN_SOURCE_GRAY: mode = "gray"
            case SAGAN_SOURCE_GRAY_ALPHA: mode = "gray+alpha"
            case SAGAN_SOURCE_RGBA: mode = "RGBA"
            case SAGAN_SOURCE_CMYK: mode = "CMYK"
            case SAGAN_SOURCE_PALETTE: mode = "palette"
            default: mode = "RGB"
            }
            return DecodedImage(
                image: image, format: format, mode: raw.source_bit_depth == 16 ? "\(mode) 16-bit" : mode,
                orientationApplied: orientation, warnings: Int(raw.warnings))
        case .idx:
            throw DataError(.unsupported, path, "IDX entries are not decoded as files")
        case .pgm, .ppm:
            let (image, deep) = try Netpbm.decode(data, path: path)
            return DecodedImage(
                image: image, format: format, mode: (format == .pgm ? "gray" : "RGB") + (deep ? " 16-bit" : ""),
                orientationApplied: nil, warnings: 0)
        }
    }

    /// Whether the data ends the way a complete file does: JPEG's EOI marker, PNG's IEND chunk.
    static func hasEndMarker(_ data: Data, _ format: ImageFormat) -> Bool {
        switch format {
        case .jpeg: return data.suffix(2).elementsEqual([0xFF, 0xD9])
        case .png: return data.suffix(12).elementsEqual([0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
        default: return true
        }
    }

    /// Reads and decodes a file.
    public static func decodeFile(_ path: String) throws -> DecodedImage {
        if let reason = PathKind(path).notAFile { throw DataError(.unreadable, path, "it is \(reason)") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw DataError(.unreadable, path, "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, path: path)
    }

    /// PNG bytes of `image` (1 to 4 channels).
    public static func encodePNG(_ image: PixelImage) throws -> Data {
        try encode { output, size, message in
            sagan_png_encode(
                image.pixels, Int32(image.width), Int32(image.height), Int32(image.channels), &output, &size, message,
                256)
        }
    }

    /// JPEG bytes of a gray, RGB or CMYK (4-channel, Adobe-inverted) `image`.
    public static func encodeJPEG(_ image: PixelImage, quality: Int = 95) throws -> Data {
        try encode { output, size, message in
            sagan_jpeg_encode(
                image.pixels, Int32(image.width), Int32(image.height), Int32(image.channels), Int32(quality), &output,
                &size, message, 256)
        }
    }

    private static func encode(
        _ body: (inout UnsafeMutablePointer<UInt8>?, inout Int, UnsafeMutablePointer<CChar>) -> Int32
    ) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { body(&output, &size, $0.baseAddress!) }
        defer { sagan_free(output) }
        guard status == 0, let output else {
            throw DataError(.invalidArgument, "", "encoding failed: \(String(cString: message))")
        }
        return Data(bytes: output, count: size)
    }
}

/// gzip through zlib.
public enum Gzip {
    /// Whether `data` starts with the gzip magic bytes.
    public static func isCompressed(_ data: Data) -> Bool { data.prefix(2).elementsEqual([0x1F, 0x8B]) }

    public static func decompress(_ data: Data, path: String, limit: Int = 1 << 32) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBytes { bytes in
            sagan_gunzip(
                bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, limit, &output, &size, &message,
                message.count)
        }
        defer { sagan_free(output) }
        guard status == 0, let output else {
            let reason = String(cString: message)
            throw DataError(reason.hasPrefix("truncated") ? .truncated : .corrupt, path, "gzip: \(reason)")
        }
        return Data(bytes: output, count: size)
    }

    public static func compress(_ data: Data) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBytes { bytes in
            sagan_gzip(
                bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &output, &size, &message, message.count)
        }
        defer { sagan_free(output) }
        guard status == 0, let output else {
            throw DataError(.invalidArgument, "", "gzip: \(String(cString: message))")
        }
        return Data(bytes: output, count: size)
    }
}
