import Autodiff

/// KID (Bińkowski et al. 2018): the unbiased MMD² between feature sets under the cubic polynomial
/// kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (docs/evaluation.md §2). Unbiased at
/// any N, which is why it is the number to trust at CPU-sized sample counts.
public enum KernelInceptionDistance {
    public struct Result: Equatable, Sendable {
        public let mean: Double
        /// Population standard deviation over the subsets (as torch-fidelity reports it).
        public let standardDeviation: Double
        public let subsets: Int
        public let subsetSize: Int

        public init(mean: Double, standardDeviation: Double, subsets: Int, subsetSize: Int) {
            self.mean = mean
            self.standardDeviation = standardDeviation
            self.subsets = subsets
            self.subsetSize = subsetSize
        }
    }

    /// `subsets` draws of `subsetSize` real and `subsetSize` fake rows, each without replacement
    /// and independent of the other draws. Gram matrices in Float32 on the engine, kernel and sums in Float64.
    public static func compute(
        real: [Float], fake: [Float], dimension: Int, subsets: Int, subsetSize: Int, seed: UInt64
    ) -> Result {
        let realCount = real.count / dimension
        let fakeCount = fake.count / dimension
        precondition(
            subsetSize >= 2 && subsetSize <= min(realCount, fakeCount),
            "KID: subset size \(subsetSize) needs 2...\(min(realCount, fakeCount))")
        var random = RandomGenerator(seed: seed)
        var values: [Double] = []
        for _ in 0..<subsets {
            let x = rows(real, dimension, choose(subsetSize, from: realCount, &random))  // (m, d)
            let y = rows(fake, dimension, choose(subsetSize, from: fakeCount, &random))  // (m, d)
            let kxx = kernelSum(x, x, dimension, skipDiagonal: true)
            let kyy = kernelSum(y, y, dimension, skipDiagonal: true)
            let kxy = kernelSum(x, y, dimension, skipDiagonal: false)
            let m = Double(subsetSize)
            values.append(kxx / (m * (m - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (m * m))
        }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return Result(mean: mean, standardDeviation: variance.squareRoot(), subsets: subsets, subsetSize: subsetSize)
    }

    /// Σ k(aᵢ, bⱼ) over all pairs (or all pairs i ≠ j).
    static func kernelSum(_ a: Tensor, _ b: Tensor, _ dimension: Int, skipDiagonal: Bool) -> Double {
        let gram = noGrad { Tensor.matmul(a, b, transposeB: true) }.scalars  // (m, m)
        let m = a.shape[0]
        var sum = 0.0
        for i in 0..<m {
            for j in 0..<m where !(skipDiagonal && i == j) {
                let base = Double(gram[i * m + j]) / Double(dimension) + 1
                sum += base * base * base
            }
        }
        return sum
    }

    /// `count` distinct indices below `total`, uniformly (a partial Fisher–Yates shuffle).
    static func choose(_ count: Int, from total: Int, _ random: inout RandomGenerator) -> [Int] {
        var indices = Array(0..<total)
        let draws = random.uniform(count: count)
        for i in 0..<count {
            let j = i + min(Int(draws[i] * Float(total - i)), total - i - 1)
            indices.swapAt(i, j)
        }
        return Array(indices.prefix(count))
    }

    static func rows(_ features: [Float], _ dimension: Int, _ indices: [Int]) -> Tensor {
        var selected = [Float](repeating: 0, count: indices.count * dimension)
        for (row, index) in indices.enumerated() {
            for j in 0..<dimension { selected[row * dimension + j] = features[index * dimension + j] }
        }
        return Tensor(shape: [indices.count, dimension], scalars: selected)
    }
}
