import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import TestSupport
import Testing

/// Blob images: a bright disc of radius `radius` at a random place on a dark background.
func blobs(_ count: Int, side: Int, radius: Float, seed: UInt64) -> [PixelImage] {
    var random = RandomGenerator(seed: seed)
    return (0..<count).map { _ in
        let centre = random.uniform(count: 2).map { Float(side) * (0.25 + 0.5 * $0) }
        var pixels = [UInt8](repeating: 20, count: side * side)
        for y in 0..<side {
            for x in 0..<side
            where (Float(x) - centre[0]) * (Float(x) - centre[0]) + (Float(y) - centre[1]) * (Float(y) - centre[1])
                < radius * radius
            {
                pixels[y * side + x] = 220
            }
        }
        return PixelImage(width: side, height: side, channels: 1, pixels: pixels)
    }
}

@Suite("Sliced Wasserstein distance")
struct SlicedWassersteinTests {
    @Test func levelsGoDownTo16() {
        #expect(SlicedWasserstein.resolutions(side: 128) == [128, 64, 32, 16])
        #expect(SlicedWasserstein.resolutions(side: 32) == [32, 16])
        #expect(SlicedWasserstein.resolutions(side: 16) == [16])
    }

    @Test func identicalSetsAreAtDistanceZero() {
        let images = blobs(8, side: 32, radius: 6, seed: 1)
        let a = SlicedWasserstein.descriptors(images, seed: 3)
        let result = SlicedWasserstein.distance(a, a, resolutions: [32, 16], seed: 4)
        #expect(result.levels.map(\.resolution) == [32, 16])
        #expect(result.levels.allSatisfy { $0.value == 0 })
        // 128 descriptors of 3x7x7 per image and level.
        #expect(a.count == 2 && a[0].count == 8 * 128 * 147)
    }

    /// Two samples of one distribution are closer than samples of two different ones.
    @Test func distanceSeparatesDistributions() {
        let small = SlicedWasserstein.descriptors(blobs(40, side: 32, radius: 5, seed: 1), seed: 3)
        let smallAgain = SlicedWasserstein.descriptors(blobs(40, side: 32, radius: 5, seed: 2), seed: 4)
        let large = SlicedWasserstein.descriptors(blobs(40, side: 32, radius: 11, seed: 5), seed: 6)
        let same = SlicedWasserstein.distance(small, smallAgain, resolutions: [32, 16], seed: 7).average
        let different = SlicedWasserstein.distance(small, large, resolutions: [32, 16], seed: 7).average
        #expect(same > 0 && different > 2 * same, "same distribution \(same), different \(different)")
    }

    /// The pyramid against numpy's (Tests/Reference/laplacian_pyramid.py, written from docs/evaluation.md
    /// alone): a 2-D 5x5 binomial convolution with reflect-101 borders, every level of a 64x64 colour image.
    @Test(.tags(.slow), .skippedInFastRuns) func laplacianPyramidMatchesNumpy() throws {
        var random = RandomGenerator(seed: 12)
        let side = 64
        let pixels = random.uniform(count: side * side * 3).map { UInt8($0 * 255) }
        let image = PixelImage(width: side, height: side, channels: 3, pixels: pixels)
        var planes = [Float](repeating: 0, count: 3 * side * side)
        for c in 0..<3 { for i in 0..<(side * side) { planes[c * side * side + i] = Float(pixels[i * 3 + c]) } }
        let folder = try temporaryFolder("pyramid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.safetensors")
        let output = folder.appendingPathComponent("out.safetensors")
        try SafeTensorsFile.write([("image", Tensor(shape: [3, side, side], scalars: planes))], to: input)
        let (status, log) = try runReferenceScript("laplacian_pyramid.py", [input.path, output.path])
        try #require(status == 0, "laplacian_pyramid.py (needs python3-torch and numpy): \(log)")
        let expected = try SafeTensorsFile(contentsOf: output)
        let pyramid = SlicedWasserstein.laplacianPyramid(image, levels: 3)
        #expect(expected.entries.count == 3)
        for (level, values) in pyramid.enumerated() {
            let reference = try expected.tensor("level\(level)").scalars
            #expect(reference.count == values.count)
            let worst = zip(values, reference).map { Swift.abs($0 - $1) }.max() ?? .infinity
            #expect(worst < 1e-3, "level \(level): worst difference \(worst) on the 0–255 scale")
        }
    }
}
