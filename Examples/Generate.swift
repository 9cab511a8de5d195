import Datasets
import Foundation
import GAN

/// A 4x4 grid of the generator of `checkpoint` for seeds 0 to 15, written to `file` as a PNG.
func drawGrid(from checkpoint: URL, to file: URL) throws {
    // snippet: generate
    let loaded = try LoadedGenerator(contentsOf: checkpoint, ema: false)
    let codes = (0..<16).map { LatentCodes.z(seed: $0, size: loaded.config.latentSize) }
    let grid = loaded.grid(codes, columns: 4)
    try ImageCodec.encodePNG(grid).write(to: file)
    // end snippet
}
