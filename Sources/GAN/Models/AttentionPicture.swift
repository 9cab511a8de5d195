import Autodiff
import Datasets
import FileFormats
import NeuralNet

/// The SAGAN paper's picture: an image with query points marked and, beside it, each query's
/// attention map (which positions it draws from) upsampled and laid over the image as a heatmap.
public enum AttentionPicture {
    /// Marker colours, one per query.
    static let colours: [(UInt8, UInt8, UInt8)] = [
        (255, 40, 40), (40, 220, 40), (60, 120, 255), (255, 220, 0), (230, 0, 230), (0, 220, 220),
    ]

    /// Each query's attention row from `layer`'s last recorded forward of image `index`, as a
    /// square map over the key grid (the pooled grid for the BigGAN variant). Queries are in image
    /// pixels of an image of side `resolution`.
    public static func maps(
        _ layer: any SelfAttentionLayer, index: Int = 0, queries: [(x: Int, y: Int)], resolution: Int
    ) throws -> [[Float]] {
        guard let attention = layer.lastAttention else {
            throw ConfigurationError.invalidArgument(.layer, "the attention layer recorded no maps")
        }
        // (N, queries, keys)
        let (queryCount, keyCount) = (attention.shape[1], attention.shape[2])
        let recorded = RecordedAttention(
            name: "", gamma: layer.gamma.value.scalar, querySide: Int(Double(queryCount).squareRoot()),
            keySide: Int(Double(keyCount).squareRoot()),
            weights: attention.sliced(alongAxis: 0, index..<(index + 1)).scalars)
        return try recorded.maps(queries: queries, resolution: resolution)
    }

    /// (C, R, R) in [−1, 1] → an RGB image.
    public static func rgb(_ image: Tensor) -> PixelImage {
        let (channels, height, width) = (image.shape[0], image.shape[1], image.shape[2])
        let values = image.scalars
        var pixels = [UInt8](repeating: 0, count: height * width * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    let value = values[(min(c, channels - 1) * height + y) * width + x]
                    pixels[(y * width + x) * 3 + c] = UInt8(max(0, min(255, ((value + 1) * 127.5).rounded())))
                }
            }
        }
        return PixelImage(width: width, height: height, channels: 3, pixels: pixels)
    }

    /// The image with markers, then one heatmap panel per query; everything scaled up to at least
    /// `minimumSide` pixels so that small images stay readable.
    public static func compose(image: PixelImage, queries: [(x: Int, y: Int)], maps: [[Float]], minimumSide: Int = 192)
        -> PixelImage
    {
        let scale = max(1, (minimumSide + image.width - 1) / image.width)
        let side = image.width * scale
        let gap = 6
        let panels = 1 + queries.count
        let width = panels * side + (panels + 1) * gap
        let height = side + 2 * gap
        var canvas = [UInt8](repeating: 255, count: width * height * 3)
        func put(_ x: Int, _ y: Int, _ colour: (UInt8, UInt8, UInt8)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            canvas[(y * width + x) * 3] = colour.0
            canvas[(y * width + x) * 3 + 1] = colour.1
            canvas[(y * width + x) * 3 + 2] = colour.2
        }
        func marker(_ query: (x: Int, y: Int), panel: Int, _ colour: (UInt8, UInt8, UInt8)) {
            let cx = gap + panel * (side + gap) + query.x * scale + scale / 2
            let cy = gap + query.y * scale + scale / 2
            for d in -5...5 where abs(d) > 1 {
                put(cx + d, cy, colour)
                put(cx, cy + d, colour)
                put(cx + d, cy + 1, (0, 0, 0))
                put(cx + 1, cy + d, (0, 0, 0))
            }
        }
        for panel in 0..<panels {
            let map = panel == 0 ? nil : maps[panel - 1]
            let colour = panel == 0 ? (0, 0, 0) : colours[(panel - 1) % colours.count]
            let mapSide = map.map { Int(Double($0.count).squareRoot()) } ?? 1
            let peak = map?.max() ?? 1
            for y in 0..<side {
                for x in 0..<side {
                    let (sx, sy) = (x / scale, y / scale)
                    let base = (sy * image.width + sx) * 3
                    var (r, g, b) = (
                        Float(image.pixels[base]), Float(image.pixels[base + 1]), Float(image.pixels[base + 2])
                    )
                    if let map {
                        // Darkened grey image under the query's colour, strongest where attention is.
                        let grey = 0.45 * (0.299 * r + 0.587 * g + 0.114 * b)
                        let weight =
                            0.85 * map[(sy * mapSide / image.height) * mapSide + sx * mapSide / image.width]
                            / max(peak, 1e-12)
                        r = (1 - weight) * grey + weight * Float(colour.0)
                        g = (1 - weight) * grey + weight * Float(colour.1)
                        b = (1 - weight) * grey + weight * Float(colour.2)
                    }
                    put(gap + panel * (side + gap) + x, gap + y, (UInt8(r), UInt8(g), UInt8(b)))
                }
            }
        }
        for (index, query) in queries.enumerated() {
            let colour = colours[index % colours.count]
            marker(query, panel: 0, colour)
            marker(query, panel: index + 1, (255, 255, 255))
        }
        return PixelImage(width: width, height: height, channels: 3, pixels: canvas)
    }
}
