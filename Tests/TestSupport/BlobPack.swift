import Autodiff
import Datasets
import Foundation

/// A small labelled 32x32 grayscale pack of blobs, written to `folder`.
public func makeBlobPack(_ folder: URL, count: Int = 24) throws -> PackedDataset {
    let url = folder.appendingPathComponent("blobs.safetensors")
    let writer = try PackedDatasetWriter(destination: url, height: 32, width: 32, channels: 1)
    var random = RandomGenerator(seed: 5)
    for index in 0..<count {
        let (cx, cy) = (8 + random.uniform(count: 1)[0] * 16, 8 + random.uniform(count: 1)[0] * 16)
        var pixels = [UInt8](repeating: 0, count: 32 * 32)
        for y in 0..<32 {
            for x in 0..<32 where (Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy) < 36 {
                pixels[y * 32 + x] = 230
            }
        }
        try writer.append(PixelImage(width: 32, height: 32, channels: 1, pixels: pixels), label: index % 2)
    }
    try writer.finish(metadata: [:], labelNames: ["a", "b"])
    return try PackedDataset(contentsOf: url)
}
