import Autodiff
import Datasets

/// Sliced Wasserstein distance between Laplacian-pyramid patch sets (Karras et al. 2018, ProGAN;
/// docs/evaluation.md §3): per pyramid level, 128 random 7x7 neighbourhoods per image, each channel
/// normalised over its set, then the mean absolute difference of the sorted projections onto
/// 4 × 128 random directions. Reported ×10³ per level and averaged. No network involved.
public enum SlicedWasserstein {
    public static let patchesPerImage = 128
    public static let patchSize = 7
    public static let directions = 128
    public static let repeats = 4

    public struct Result: Equatable, Sendable {
        /// (resolution, SWD × 10³), finest level first.
        public let levels: [(resolution: Int, value: Double)]
        public var average: Double { levels.reduce(0) { $0 + $1.value } / Double(max(levels.count, 1)) }

        public init(levels: [(resolution: Int, value: Double)]) { self.levels = levels }

        public static func == (a: Result, b: Result) -> Bool {
            a.levels.count == b.levels.count
                && zip(a.levels, b.levels).allSatisfy { $0.resolution == $1.resolution && $0.value == $1.value }
        }
    }

    /// Pyramid resolutions for square images of side `side`: side, side/2, … down to 16.
    public static func resolutions(side: Int) -> [Int] {
        var result = [side]
        while result.last! / 2 >= 16 && result.last! % 2 == 0 { result.append(result.last! / 2) }
        return result
    }

    /// Descriptors of one image set, per level: (count·128, 3, 7, 7) floats, channel-normalised.
    public static func descriptors(_ images: [PixelImage], seed: UInt64) -> [[Float]] {
        precondition(!images.isEmpty, "SWD: no images")
        let side = images[0].width
        let levels = resolutions(side: side)
        var random = RandomGenerator(seed: seed)
        var perLevel = [[Float]](repeating: [], count: levels.count)
        let patchValues = 3 * patchSize * patchSize
        for level in perLevel.indices { perLevel[level].reserveCapacity(images.count * patchesPerImage * patchValues) }
        for image in images {
            precondition(image.width == side && image.height == side, "SWD: images must all be \(side)x\(side)")
            let pyramid = laplacianPyramid(image, levels: levels.count)
            for (level, plane) in pyramid.enumerated() {
                let size = levels[level]
                // Centres uniform in [3, size − 4] along each axis.
                let draws = random.uniform(count: 2 * patchesPerImage)
                let span = size - 2 * (patchSize / 2)
                for patch in 0..<patchesPerImage {
                    let cy = patchSize / 2 + min(Int(draws[2 * patch] * Float(span)), span - 1)
                    let cx = patchSize / 2 + min(Int(draws[2 * patch + 1] * Float(span)), span - 1)
                    for c in 0..<3 {
                        for dy in -3...3 {
                            let row = (c * size + cy + dy) * size
                            for dx in -3...3 { perLevel[level].append(plane[row + cx + dx]) }
                        }
                    }
                }
            }
        }
        return perLevel.map(normalizedPerChannel)
    }

    /// The distance between two descriptor sets from `descriptors` (equal counts).
    public static func distance(_ a: [[Float]], _ b: [[Float]], resolutions: [Int], seed: UInt64) -> Result {
        precondition(a.count == b.count && a.count == resolutions.count, "SWD: level counts differ")
        let dimension = 3 * patchSize * patchSize
        var random = RandomGenerator(seed: seed)
        var levels: [(Int, Double)] = []
        for level in a.indices {
            precondition(a[level].count == b[level].count, "SWD: the two sets need equal descriptor counts")
            let count = a[level].count / dimension
            let left = Tensor(shape: [count, dimension], scalars: a[level])
            let right = Tensor(shape: [count, dimension], scalars: b[level])
            var total = 0.0
            for _ in 0..<repeats {
                // Directions: N(0, 1) columns of unit length.
                var d = random.normal(count: dimension * directions)
                for column in 0..<directions {
                    var norm: Float = 0
                    for row in 0..<dimension { norm += d[row * directions + column] * d[row * directions + column] }
                    norm = norm.squareRoot()
                    for row in 0..<dimension { d[row * directions + column] /= norm }
                }
                let projection = Tensor(shape: [dimension, directions], scalars: d)
                let (pa, pb) = noGrad {
                    (Tensor.matmul(left, projection).scalars, Tensor.matmul(right, projection).scalars)
                }  // (count, 128) each
                var sum = 0.0
                for column in 0..<directions {
                    let x = (0..<count).map { pa[$0 * directions + column] }.sorted()
                    let y = (0..<count).map { pb[$0 * directions + column] }.sorted()
                    for (u, v) in zip(x, y) { sum += Double(Swift.abs(u - v)) }
                }
                total += sum / Double(count * directions)
            }
            levels.append((resolutions[level], total / Double(repeats) * 1e3))
        }
        return Result(levels: levels)
    }

    /// Each channel minus its mean, over its standard deviation (population), over every descriptor and position.
    static func normalizedPerChannel(_ values: [Float]) -> [Float] {
        let block = patchSize * patchSize
        let stride = 3 * block
        var result = values
        for c in 0..<3 {
            var sum = 0.0
            var squares = 0.0
            var n = 0.0
            for start in Swift.stride(from: c * block, to: values.count, by: stride) {
                for i in start..<(start + block) {
                    let v = Double(values[i])
                    sum += v
                    squares += v * v
                    n += 1
                }
            }
            let mean = sum / n
            let deviation = max((squares / n - mean * mean).squareRoot(), 1e-8)
            for start in Swift.stride(from: c * block, to: values.count, by: stride) {
                for i in start..<(start + block) { result[i] = Float((Double(values[i]) - mean) / deviation) }
            }
        }
        return result
    }

    /// Laplacian pyramid of an 8-bit image as float planes (3, S, S) on the 0–255 scale (gray
    /// replicated): every level but the last holds the detail lost by halving; the last stays Gaussian.
    public static func laplacianPyramid(_ image: PixelImage, levels: Int) -> [[Float]] {
        let rgb = image.channels == 3 ? image : image.converted(toChannels: 3)
        let side = rgb.width
        var planes = [Float](repeating: 0, count: 3 * side * side)
        for c in 0..<3 { for i in 0..<(side * side) { planes[c * side * side + i] = Float(rgb.pixels[i * 3 + c]) } }
        var pyramid = [planes]
        var size = side
        for _ in 1..<levels {
            let smaller = pyramidDown(pyramid[pyramid.count - 1], size: size)
            let restored = pyramidUp(smaller, size: size / 2)
            for i in pyramid[pyramid.count - 1].indices { pyramid[pyramid.count - 1][i] -= restored[i] }
            pyramid.append(smaller)
            size /= 2
        }
        return pyramid
    }

    static let taps: [Float] = [1, 4, 6, 4, 1].map { $0 / 16 }

    /// Index reflected about the edge pixels (… c b | a b c … x y | x w …: OpenCV's BORDER_REFLECT_101).
    static func reflect(_ i: Int, _ size: Int) -> Int {
        guard size > 1 else { return 0 }
        var index = i
        while index < 0 || index >= size { index = index < 0 ? -index : 2 * (size - 1) - index }
        return index
    }

    /// Binomial 5x5 blur (separable [1 4 6 4 1]/16 twice), then every second row and column.
    static func pyramidDown(_ planes: [Float], size: Int) -> [Float] {
        let half = size / 2
        var result = [Float](repeating: 0, count: 3 * half * half)
        var rows = [Float](repeating: 0, count: size * half)  // horizontally filtered at even columns
        for c in 0..<3 {
            let plane = c * size * size
            for y in 0..<size {
                for x in 0..<half {
                    var sum: Float = 0
                    for (k, w) in taps.enumerated() {
                        sum += w * planes[plane + y * size + reflect(2 * x + k - 2, size)]
                    }
                    rows[y * half + x] = sum
                }
            }
            for y in 0..<half {
                for x in 0..<half {
                    var sum: Float = 0
                    for (k, w) in taps.enumerated() { sum += w * rows[reflect(2 * y + k - 2, size) * half + x] }
                    result[(c * half + y) * half + x] = sum
                }
            }
        }
        return result
    }

    /// Zeros between the samples (twice the size), then the same blur times 4.
    static func pyramidUp(_ planes: [Float], size: Int) -> [Float] {
        let double = 2 * size
        var result = [Float](repeating: 0, count: 3 * double * double)
        var spread = [Float](repeating: 0, count: double * double)
        var rows = [Float](repeating: 0, count: double * double)
        for c in 0..<3 {
            for i in spread.indices { spread[i] = 0 }
            for y in 0..<size {
                for x in 0..<size { spread[(2 * y) * double + 2 * x] = planes[(c * size + y) * size + x] }
            }
            for y in 0..<double {
                for x in 0..<double {
                    var sum: Float = 0
                    for (k, w) in taps.enumerated() { sum += w * spread[y * double + reflect(x + k - 2, double)] }
                    rows[y * double + x] = 2 * sum
                }
            }
            for y in 0..<double {
                for x in 0..<double {
                    var sum: Float = 0
                    for (k, w) in taps.enumerated() { sum += w * rows[reflect(y + k - 2, double) * double + x] }
                    result[(c * double + y) * double + x] = 2 * sum
                }
            }
        }
        return result
    }
}
