import FileFormats

/// Antialiased resizing: PIL's separable bicubic (Keys, a = −0.5) whose support widens with the
/// shrink factor, so every source pixel contributes when shrinking (no aliasing, unlike plain
/// bilinear or nearest). Weights are renormalised at the borders; results are rounded and clamped,
/// which matches PIL's fixed-point implementation within ±1 level.
public enum Resampling {
    /// The filter docs/formats.md names; recorded in packed datasets.
    public static let filterName = "bicubic-antialias (PIL-style, a=-0.5)"

    public static func resize(_ image: PixelImage, width: Int, height: Int) -> PixelImage {
        require(width > 0 && height > 0, "Resampling.resize: target \(width)x\(height) is empty")
        if image.width == width && image.height == height { return image }
        let horizontal = weights(input: image.width, output: width)
        let vertical = weights(input: image.height, output: height)
        let channels = image.channels
        // Horizontal pass into Float rows, then vertical pass with rounding.
        var rows = [Float](repeating: 0, count: image.height * width * channels)
        image.pixels.withUnsafeBufferPointer { source in
            for y in 0..<image.height {
                for x in 0..<width {
                    let (start, kernel) = horizontal[x]
                    for c in 0..<channels {
                        var sum: Float = 0
                        for (offset, weight) in kernel.enumerated() {
                            sum += weight * Float(source[(y * image.width + start + offset) * channels + c])
                        }
                        rows[(y * width + x) * channels + c] = sum
                    }
                }
            }
        }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            let (start, kernel) = vertical[y]
            for x in 0..<width {
                for c in 0..<channels {
                    var sum: Float = 0
                    for (offset, weight) in kernel.enumerated() {
                        sum += weight * rows[((start + offset) * width + x) * channels + c]
                    }
                    pixels[(y * width + x) * channels + c] = UInt8(max(0, min(255, (sum + 0.5).rounded(.down))))
                }
            }
        }
        return PixelImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// For each output index: the first input index and the normalised weights from there on.
    static func weights(input: Int, output: Int) -> [(start: Int, weights: [Float])] {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = 2 * filterScale
        return (0..<output).map { index in
            let center = (Double(index) + 0.5) * scale
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), input)
            var kernel = (low..<high).map { cubic((Double($0) - center + 0.5) / filterScale) }
            let total = kernel.reduce(0, +)
            if total != 0 { kernel = kernel.map { $0 / total } }
            return (low, kernel.map(Float.init))
        }
    }

    /// Keys' cubic convolution kernel with a = −0.5.
    static func cubic(_ value: Double) -> Double {
        let a = -0.5
        let x = abs(value)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }
}

/// How a non-square image becomes square before resizing.
public enum CropPolicy: String, Sendable, CaseIterable, Codable {
    /// The largest centred square (torchvision's CenterCrop offsets).
    case center
    /// CelebA's aligned 178x218 faces: the 178x178 box at (0, 20) (docs/formats.md §6); other sizes
    /// fall back to the centred square.
    case celeba
    /// No crop: the whole image is resized to a square (the aspect ratio changes).
    case none

    /// The crop box (left, top, side × side or width × height) for an image of the given size.
    public func box(width: Int, height: Int) -> (left: Int, top: Int, width: Int, height: Int) {
        switch self {
        case .none:
            return (0, 0, width, height)
        case .celeba where width == 178 && height == 218:
            return (0, 20, 178, 178)
        case .center, .celeba:
            let side = min(width, height)
            let left = Int((Double(width - side) / 2).rounded(.toNearestOrEven))
            let top = Int((Double(height - side) / 2).rounded(.toNearestOrEven))
            return (left, top, side, side)
        }
    }
}
