import Datasets
import FileFormats
import Foundation

/// SWD as a metric of the protocol: sliced Wasserstein distances between Laplacian-pyramid patches
/// of the images themselves (seeds: seed+1 and +2 for each set's patches, seed+3 for the directions).
struct SWDMetric: MetricDefinition {
    let name = "swd"
    let title = "SWD ×10³"
    let input = MetricInput.pixels
    let lowerIsBetter = true
    let headlineKey = "swd_x1e3_avg"

    func notes(_ options: EvaluationOptions) -> [String] {
        guard options.count < 1000 else { return [] }
        return [
            "warning: SWD from N = \(options.count) per side is noisy (ProGAN used 16,384; 2,000–8,000 tracks training)"
        ]
    }

    func compute(_ inputs: MetricInputs) throws -> any MetricValue {
        let realImages = try load(inputs.real, inputs.realIndices, .real)
        let fakeImages = try load(inputs.fake, inputs.fakeIndices, inputs.fakeSetting)
        let realSide = realImages[0].width
        let fakeSide = fakeImages[0].width
        guard realSide == fakeSide else {
            throw EvaluationError.unsuitableImages(
                "SWD compares images of one resolution: real images are \(realSide)x\(realSide), fake "
                    + "\(fakeSide)x\(fakeSide); "
                    + "pack the real set at \(fakeSide) (sagan dataset pack --resolution \(fakeSide)) or leave swd "
                    + "out of \(Setting.metrics)"
            )
        }
        let resolutions = SlicedWasserstein.resolutions(side: realSide)
        let seed = inputs.options.seed
        let a = SlicedWasserstein.descriptors(realImages, seed: seed &+ 1)
        let b = SlicedWasserstein.descriptors(fakeImages, seed: seed &+ 2)
        return SlicedWasserstein.distance(a, b, resolutions: resolutions, seed: seed &+ 3)
    }

    /// The images of `set` at `indices`: square, of one size, at least 16x16.
    private func load(_ set: ImageSet, _ indices: [Int], _ setting: Setting) throws -> [PixelImage] {
        var images: [PixelImage] = []
        for start in stride(from: 0, to: indices.count, by: 256) {
            images += try set.images(Array(indices[start..<min(start + 256, indices.count)]))
        }
        let side = images[0].width
        if side < 16 || images.contains(where: { $0.width != side || $0.height != side }) {
            let odd = images.first { $0.width != side || $0.height != side } ?? images[0]
            throw EvaluationError.unsuitableImages(
                "\(setting): SWD needs square images of one size, at least 16x16; found \(odd.width)x\(odd.height) "
                    + "(pack the set with `sagan dataset pack --resolution R`)")
        }
        return images
    }

    func decode(_ entries: RecordEntries) throws -> (any MetricValue)? {
        let levels = try entries.allKeys.compactMap { key -> (resolution: Int, value: Double)? in
            guard key.hasPrefix("swd_x1e3_"), let resolution = Int(key.dropFirst(9)),
                let value = try entries.number(key)
            else { return nil }
            return (resolution, value)
        }
        return levels.isEmpty ? nil : SlicedWasserstein.Result(levels: levels.sorted { $0.resolution > $1.resolution })
    }
}

extension SlicedWasserstein.Result: MetricValue {
    public var headline: Double { average }
    public var entries: [(key: String, value: RecordEntry)] {
        levels.map { ("swd_x1e3_\($0.resolution)", .number($0.value)) } + [("swd_x1e3_avg", .number(average))]
    }
    public var scalars: [(tag: String, value: Float)] {
        levels.map { ("Metrics/SWDx1e3_\($0.resolution)", Float($0.value)) } + [("Metrics/SWDx1e3_avg", Float(average))]
    }
    public var summary: String { String(format: "SWD×10³ %.2f", average) }
    public var report: [String] {
        [
            "  SWD ×10³ " + levels.map { String(format: "%d: %.2f", $0.resolution, $0.value) }.joined(separator: ", ")
                + String(format: "; average %.2f", average)
        ]
    }
}

extension Metric {
    /// Sliced Wasserstein distance over Laplacian pyramids (docs/evaluation.md §4).
    public static let swd = Metric(SWDMetric())
}

extension EvaluationRecord {
    public var swd: SlicedWasserstein.Result? {
        get { values[.swd] as? SlicedWasserstein.Result }
        set { values[.swd] = newValue }
    }
}
