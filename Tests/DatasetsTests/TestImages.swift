import Datasets
import Foundation

/// Images and files the tests make themselves.
enum TestImages {
    /// A smooth colour gradient (JPEG-friendly).
    static func gradient(width: Int, height: Int, channels: Int) -> PixelImage {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    pixels.append(UInt8(x * 180 / max(width - 1, 1) + y * 40 / max(height - 1, 1) + c * 10))
                }
            }
        }
        return PixelImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Distinct values everywhere (lossless formats round-trip exactly).
    static func noise(width: Int, height: Int, channels: Int, seed: UInt64 = 1) -> PixelImage {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        let pixels = (0..<(width * height * channels)).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        return PixelImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    static func temporaryFolder(_ name: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// CRC-32 (zlib/PNG polynomial), to patch PNG chunks.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// A valid PNG whose header claims `width`×`height` pixels.
    static func pngClaiming(width: Int, height: Int) throws -> Data {
        var bytes = [UInt8](try ImageCodec.encodePNG(noise(width: 2, height: 2, channels: 3)))
        // IHDR data starts at 16: width and height big-endian, then the chunk's CRC at 29.
        let size = [width, height].flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        }
        bytes.replaceSubrange(16..<24, with: size)
        let crc = crc32(Array(bytes[12..<29]))
        bytes.replaceSubrange(29..<33, with: (0..<4).map { UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32($0))) })
        return Data(bytes)
    }

    /// A valid JPEG whose frame header claims `width`×`height` pixels.
    static func jpegClaiming(width: Int, height: Int) throws -> Data {
        var bytes = [UInt8](try ImageCodec.encodeJPEG(gradient(width: 8, height: 8, channels: 3)))
        guard let sof = (0..<(bytes.count - 1)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }) else {
            return Data(bytes)
        }
        bytes.replaceSubrange(
            (sof + 5)..<(sof + 9),
            with: [UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF)])
        return Data(bytes)
    }

    /// A JPEG with an EXIF APP1 segment giving `orientation`.
    static func jpegWithOrientation(_ image: PixelImage, orientation: UInt16) throws -> Data {
        let jpeg = [UInt8](try ImageCodec.encodeJPEG(image, quality: 100))
        // TIFF little-endian: header, one IFD entry (0x0112, SHORT, 1, value), no next IFD.
        var tiff: [UInt8] = [0x49, 0x49, 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00]
        tiff += [
            0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, UInt8(orientation & 0xFF), UInt8(orientation >> 8), 0x00,
            0x00,
        ]
        tiff += [0, 0, 0, 0]
        let payload = Array("Exif".utf8) + [0, 0] + tiff
        let length = payload.count + 2
        let segment: [UInt8] = [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
        return Data(Array(jpeg[0..<2]) + segment + Array(jpeg[2...]))
    }
}
