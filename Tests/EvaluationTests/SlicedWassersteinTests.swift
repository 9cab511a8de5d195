import Testing
import Autodiff
import Datasets
import Evaluation

/// Blob images: a bright disc of radius `radius` at a random place on a dark background.
func blobs(_ count: Int, side: Int, radius: Float, seed: UInt64) -> [PixelImage] {
    var random = RandomGenerator(seed: seed)
    return (0..<count).map { _ in
        let centre = random.uniform(count: 2).map { Float(side) * (0.25 + 0.5 * $0) }
        var pixels = [UInt8](repeating: 20, count: side * side)
        for y in 0..<side { for x in 0..<side where (Float(x) - centre[0]) * (Float(x) - centre[0]) + (Float(y) - centre[1]) * (Float(y) - centre[1]) < radius * radius {
            pixels[y * side + x] = 220
        } }
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
}
