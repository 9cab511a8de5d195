/// Mean and covariance of a set of feature vectors, accumulated in Float64 (docs/evaluation.md §1.4).
public struct FeatureStatistics: Equatable, Sendable {
    public let count: Int
    public let mean: [Double]
    /// Sample covariance, denominator count − 1 (numpy's `np.cov`).
    public let covariance: Matrix

    public init(count: Int, mean: [Double], covariance: Matrix) {
        self.count = count
        self.mean = mean
        self.covariance = covariance
    }

    /// Statistics of `count` row vectors of `dimension` features, row-major.
    public init(features: [Float], dimension: Int) {
        precondition(
            dimension > 0 && features.count % dimension == 0,
            "FeatureStatistics: \(features.count) values are not rows of \(dimension)")
        let count = features.count / dimension
        var mean = [Double](repeating: 0, count: dimension)
        for row in 0..<count { for j in 0..<dimension { mean[j] += Double(features[row * dimension + j]) } }
        for j in 0..<dimension { mean[j] /= Double(max(count, 1)) }
        // Σ = Σ_rows (x − μ)(x − μ)ᵀ / (count − 1): the upper triangle, mirrored.
        var sums = [Double](repeating: 0, count: dimension * dimension)
        var centred = [Double](repeating: 0, count: dimension)
        sums.withUnsafeMutableBufferPointer { sums in
            for row in 0..<count {
                for j in 0..<dimension { centred[j] = Double(features[row * dimension + j]) - mean[j] }
                centred.withUnsafeBufferPointer { x in
                    for i in 0..<dimension {
                        let xi = x[i]
                        if xi == 0 { continue }
                        let line = sums.baseAddress! + i * dimension
                        for j in i..<dimension { line[j] += xi * x[j] }
                    }
                }
            }
        }
        let denominator = Double(max(count - 1, 1))
        var covariance = Matrix(size: dimension, values: sums)
        for i in 0..<dimension {
            for j in i..<dimension {
                let value = covariance[i, j] / denominator
                covariance[i, j] = value
                covariance[j, i] = value
            }
        }
        self.init(count: count, mean: mean, covariance: covariance)
    }
}

/// The Fréchet distance between two Gaussians (FID when they model Inception features):
/// ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^{1/2}, with Tr (Σ₁Σ₂)^{1/2} = Σᵢ √λᵢ(S Σ₂ S) and
/// S = Σ₁^{1/2} from Σ₁'s symmetric eigendecomposition (S Σ₂ S is similar to Σ₁Σ₂ and symmetric,
/// so only symmetric eigensolvers are needed). Tiny negative eigenvalues from rounding count as 0.
public enum FrechetDistance {
    /// The distance, and S = Σ₁^{1/2} for reuse when the first set is a cached reference.
    public static func distance(_ first: FeatureStatistics, _ second: FeatureStatistics, rootOfFirst: Matrix? = nil)
        throws -> Double
    {
        precondition(
            first.mean.count == second.mean.count,
            "FrechetDistance: \(first.mean.count) vs \(second.mean.count) features")
        let root = try rootOfFirst ?? squareRoot(first.covariance)
        let product = root.multiplied(by: second.covariance).multiplied(by: root).symmetrized()
        let eigenvalues = try SymmetricEigen.decompose(product, vectors: false).values
        let traceOfRoot = eigenvalues.reduce(0) { $0 + max($1, 0).squareRoot() }
        let meanDistance = zip(first.mean, second.mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return meanDistance + first.covariance.trace + second.covariance.trace - 2 * traceOfRoot
    }

    /// The distance between a reference (its statistics and Σ₁^½) and a set of feature rows. With
    /// no more rows n than features d, Σ₂ = XᵀX/(n − 1) for the centred rows X, so S Σ₂ S = ZᵀZ with
    /// Z = X S/√(n − 1), whose non-zero eigenvalues are those of the n×n matrix Z Zᵀ: an n×n
    /// eigenproblem instead of a d×d one (the common case on a CPU budget: 1,000 images, 2,048 features).
    public static func distance(reference: FeatureStatistics, root: Matrix, features: [Float]) throws -> Double {
        let d = reference.mean.count
        let n = features.count / d
        guard n >= 2, n <= d else {
            return try distance(reference, FeatureStatistics(features: features, dimension: d), rootOfFirst: root)
        }
        // The d×d covariance is never formed: Tr Σ₂ is the squared norm of the scaled centred rows.
        var mean = [Double](repeating: 0, count: d)
        for row in 0..<n { for j in 0..<d { mean[j] += Double(features[row * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        let scale = 1 / Double(n - 1).squareRoot()
        var centred = [Double](repeating: 0, count: n * d)  // (n, d)
        for row in 0..<n { for j in 0..<d { centred[row * d + j] = (Double(features[row * d + j]) - mean[j]) * scale } }
        let traceOfSecond = centred.reduce(0) { $0 + $1 * $1 }
        let z = Matrix.product(centred, root.values, rows: n, inner: d, columns: d)  // (n, d)
        var zTransposed = [Double](repeating: 0, count: d * n)
        for row in 0..<n { for j in 0..<d { zTransposed[j * n + row] = z[row * d + j] } }
        let gram = Matrix(size: n, values: Matrix.product(z, zTransposed, rows: n, inner: d, columns: n)).symmetrized()
        let eigenvalues = try SymmetricEigen.decompose(gram, vectors: false).values
        let traceOfRoot = eigenvalues.reduce(0) { $0 + max($1, 0).squareRoot() }
        let meanDistance = zip(reference.mean, mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return meanDistance + reference.covariance.trace + traceOfSecond - 2 * traceOfRoot
    }

    /// The symmetric positive semi-definite square root V diag(√max(λ, 0)) Vᵀ.
    public static func squareRoot(_ matrix: Matrix) throws -> Matrix {
        let (values, vectors) = try SymmetricEigen.decompose(matrix.symmetrized(), vectors: true)
        let v = vectors!
        let n = matrix.size
        // V·diag(√λ), then times Vᵀ.
        var scaled = v
        for column in 0..<n {
            let root = max(values[column], 0).squareRoot()
            for row in 0..<n { scaled[row, column] *= root }
        }
        var transposed = Matrix.zeros(n)
        for row in 0..<n { for column in 0..<n { transposed[column, row] = v[row, column] } }
        return scaled.multiplied(by: transposed).symmetrized()
    }
}
