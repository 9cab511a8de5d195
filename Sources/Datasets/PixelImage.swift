import FileFormats

/// An 8-bit image: `height` rows of `width` pixels with `channels` interleaved samples each.
public struct PixelImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
    public var channels: Int
    /// Row-major, channels interleaved (HWC).
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        require(
            pixels.count == width * height * channels,
            "PixelImage: \(pixels.count) samples do not fill \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public subscript(x x: Int, y y: Int, channel channel: Int) -> UInt8 { pixels[(y * width + x) * channels + channel] }

    /// The image with `target` channels (1 or 3): gray is replicated to RGB, RGB becomes luma
    /// (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, as PIL's "L"), alpha is dropped (as PIL's convert).
    public func converted(toChannels target: Int) -> PixelImage {
        if channels == target { return self }
        var result = [UInt8](repeating: 0, count: width * height * target)
        for index in 0..<(width * height) {
            let source = index * channels
            let color = channels >= 3
            let r = Int(pixels[source])
            let g = Int(pixels[source + (color ? 1 : 0)])
            let b = Int(pixels[source + (color ? 2 : 0)])
            if target == 1 {
                result[index] = color ? UInt8((r * 299 + g * 587 + b * 114 + 500) / 1000) : UInt8(r)
            } else {
                result[index * 3] = UInt8(r)
                result[index * 3 + 1] = UInt8(g)
                result[index * 3 + 2] = UInt8(b)
            }
        }
        return PixelImage(width: width, height: height, channels: target, pixels: result)
    }

    /// The rectangle of `width`×`height` pixels at (`left`, `top`); must lie inside the image.
    public func cropped(left: Int, top: Int, width newWidth: Int, height newHeight: Int) -> PixelImage {
        require(
            left >= 0 && top >= 0 && left + newWidth <= width && top + newHeight <= height,
            "PixelImage.cropped: box (\(left), \(top), \(newWidth)x\(newHeight)) is outside \(width)x\(height)")
        var result = [UInt8]()
        result.reserveCapacity(newWidth * newHeight * channels)
        for y in top..<(top + newHeight) {
            let start = (y * width + left) * channels
            result.append(contentsOf: pixels[start..<(start + newWidth * channels)])
        }
        return PixelImage(width: newWidth, height: newHeight, channels: channels, pixels: result)
    }

    /// Adds `amount` pixels of `value` on every side (MNIST-style 28 → 32 padding).
    public func padded(by amount: Int, value: UInt8 = 0) -> PixelImage {
        let newWidth = width + 2 * amount
        let newHeight = height + 2 * amount
        var result = [UInt8](repeating: value, count: newWidth * newHeight * channels)
        for y in 0..<height {
            let source = y * width * channels
            let target = ((y + amount) * newWidth + amount) * channels
            result.replaceSubrange(
                target..<(target + width * channels), with: pixels[source..<(source + width * channels)])
        }
        return PixelImage(width: newWidth, height: newHeight, channels: channels, pixels: result)
    }
}
