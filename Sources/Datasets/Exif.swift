import Foundation

/// The one EXIF field that changes how pixels must be read: orientation (tag 0x0112).
enum Exif {
    /// The orientation value (1–8) in a TIFF-structured EXIF payload, if present and valid.
    static func orientation(_ tiff: Data) -> Int? {
        let bytes = [UInt8](tiff)
        guard bytes.count >= 8 else { return nil }
        let little: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at + 2 <= bytes.count else { return nil }
            return little ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : Int(bytes[at]) << 8 | Int(bytes[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let a = u16(at), let b = u16(at + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let directory = u32(4), let count = u16(directory) else { return nil }
        for index in 0..<count {
            let entry = directory + 2 + index * 12
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112, let value = u16(entry + 8), (1...8).contains(value) { return value }
        }
        return nil
    }

    /// The pixels as they are meant to be seen, given EXIF orientation `value` (2–8).
    static func apply(orientation value: Int, to image: PixelImage) -> PixelImage {
        // Orientations 5–8 swap width and height. For each output pixel, find its source pixel.
        let transposed = value >= 5
        let width = transposed ? image.height : image.width
        let height = transposed ? image.width : image.height
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                let (sx, sy): (Int, Int)
                switch value {
                case 2: (sx, sy) = (image.width - 1 - x, y)  // mirrored horizontally
                case 3: (sx, sy) = (image.width - 1 - x, image.height - 1 - y)  // rotated 180°
                case 4: (sx, sy) = (x, image.height - 1 - y)  // mirrored vertically
                case 5: (sx, sy) = (y, x)  // transposed
                case 6: (sx, sy) = (y, image.height - 1 - x)  // rotated 90° clockwise to view
                case 7: (sx, sy) = (image.width - 1 - y, image.height - 1 - x)  // transversed
                case 8: (sx, sy) = (image.width - 1 - y, x)  // rotated 90° counter-clockwise to view
                default: (sx, sy) = (x, y)
                }
                for c in 0..<image.channels {
                    pixels[(y * width + x) * image.channels + c] =
                        image.pixels[(sy * image.width + sx) * image.channels + c]
                }
            }
        }
        return PixelImage(width: width, height: height, channels: image.channels, pixels: pixels)
    }
}
