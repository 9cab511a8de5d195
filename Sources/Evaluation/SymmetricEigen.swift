import Foundation

/// A dense square matrix of Doubles, row-major: the statistics of FID are computed in Float64.
public struct Matrix: Equatable, Sendable {
    public let size: Int
    public var values: [Double]

    public init(size: Int, values: [Double]) {
        precondition(values.count == size * size, "Matrix: \(values.count) values for \(size)x\(size)")
        self.size = size
        self.values = values
    }

    public static func zeros(_ size: Int) -> Matrix {
        Matrix(size: size, values: [Double](repeating: 0, count: size * size))
    }

    public static func identity(_ size: Int) -> Matrix {
        var result = zeros(size)
        for i in 0..<size { result[i, i] = 1 }
        return result
    }

    public subscript(row: Int, column: Int) -> Double {
        get { values[row * size + column] }
        set { values[row * size + column] = newValue }
    }

    public var trace: Double { (0..<size).reduce(0) { $0 + self[$1, $1] } }

    /// self · other.
    public func multiplied(by other: Matrix) -> Matrix {
        precondition(size == other.size)
        return Matrix(size: size, values: Matrix.product(values, other.values, rows: size, inner: size, columns: size))
    }

    /// Row-major (rows × inner) · (inner × columns), in blocks of B that stay in the L2 cache
    /// (a plain i-k-j loop streams all of B from memory once per row of A).
    public static func product(_ a: [Double], _ b: [Double], rows: Int, inner: Int, columns: Int) -> [Double] {
        precondition(
            a.count == rows * inner && b.count == inner * columns,
            "Matrix.product: \(a.count) and \(b.count) values for \(rows)x\(inner)·\(inner)x\(columns)")
        var c = [Double](repeating: 0, count: rows * columns)
        let innerBlock = 128
        let columnBlock = 512
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    for k0 in stride(from: 0, to: inner, by: innerBlock) {
                        let k1 = min(k0 + innerBlock, inner)
                        for j0 in stride(from: 0, to: columns, by: columnBlock) {
                            let width = min(columnBlock, columns - j0)
                            for i in 0..<rows {
                                let row = c.baseAddress! + i * columns + j0
                                for k in k0..<k1 {
                                    let factor = a[i * inner + k]
                                    if factor == 0 { continue }
                                    let source = b.baseAddress! + k * columns + j0
                                    for j in 0..<width { row[j] += factor * source[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return c
    }

    /// (self + selfᵀ) / 2: removes the rounding asymmetry of products that are symmetric in exact arithmetic.
    public func symmetrized() -> Matrix {
        var result = self
        for i in 0..<size {
            for j in (i + 1)..<size {
                let mean = (self[i, j] + self[j, i]) / 2
                (result[i, j], result[j, i]) = (mean, mean)
            }
        }
        return result
    }
}

/// Eigenvalues and eigenvectors of a symmetric matrix: Householder reduction to tridiagonal form,
/// then the implicit QL algorithm with Wilkinson shifts (Golub & Van Loan §8.3). Double precision.
public enum SymmetricEigen {
    /// Eigenvalues (ascending), and with `vectors` the matrix whose column i is the unit
    /// eigenvector of eigenvalue i. Throws if QL does not converge (it does for any symmetric input
    /// in far fewer than the allowed iterations).
    public static func decompose(_ matrix: Matrix, vectors: Bool) throws -> (values: [Double], vectors: Matrix?) {
        let n = matrix.size
        guard n > 0 else { return ([], vectors ? Matrix.zeros(0) : nil) }
        var a = matrix.values
        var q: [Double] = vectors ? Matrix.identity(n).values : []
        var diagonal = [Double](repeating: 0, count: n)
        var offDiagonal = [Double](repeating: 0, count: n)  // offDiagonal[i] couples i and i + 1
        tridiagonalize(&a, n, &q, &diagonal, &offDiagonal, accumulate: vectors)
        try diagonalize(&diagonal, &offDiagonal, &q, n, accumulate: vectors)
        let order = (0..<n).sorted { diagonal[$0] < diagonal[$1] }
        let values = order.map { diagonal[$0] }
        guard vectors else { return (values, nil) }
        var sorted = Matrix.zeros(n)
        for (column, source) in order.enumerated() { for row in 0..<n { sorted[row, column] = q[row * n + source] } }
        return (values, sorted)
    }

    /// A = Q T Qᵀ with T tridiagonal, by Householder reflections H = I − 2vvᵀ applied from both sides.
    private static func tridiagonalize(
        _ a: inout [Double], _ n: Int, _ q: inout [Double], _ diagonal: inout [Double],
        _ offDiagonal: inout [Double], accumulate: Bool
    ) {
        var v = [Double](repeating: 0, count: n)
        var p = [Double](repeating: 0, count: n)
        for k in 0..<max(n - 2, 0) {
            let first = k + 1
            var norm = 0.0
            for i in first..<n { norm += a[i * n + k] * a[i * n + k] }
            norm = norm.squareRoot()
            diagonal[k] = a[k * n + k]
            if norm == 0 {
                offDiagonal[k] = 0
                continue
            }
            let alpha = a[first * n + k] > 0 ? -norm : norm
            for i in first..<n { v[i] = a[i * n + k] }
            v[first] -= alpha
            var length = 0.0
            for i in first..<n { length += v[i] * v[i] }
            length = length.squareRoot()
            offDiagonal[k] = alpha
            if length == 0 { continue }
            for i in first..<n { v[i] /= length }
            // Trailing block B ← H B H = B − v wᵀ − w vᵀ with p = B v, w = 2(p − (vᵀp) v).
            a.withUnsafeMutableBufferPointer { block in
                for i in first..<n {
                    var sum = 0.0
                    let row = block.baseAddress! + i * n
                    for j in first..<n { sum += row[j] * v[j] }
                    p[i] = sum
                }
                var vp = 0.0
                for i in first..<n { vp += v[i] * p[i] }
                for i in first..<n { p[i] = 2 * (p[i] - vp * v[i]) }
                for i in first..<n {
                    let row = block.baseAddress! + i * n
                    let (vi, wi) = (v[i], p[i])
                    for j in first..<n { row[j] -= vi * p[j] + wi * v[j] }
                }
            }
            if accumulate {
                // Q ← Q H: every row r of Q loses 2 (Q[r, :] · v) vᵀ.
                q.withUnsafeMutableBufferPointer { matrix in
                    for r in 0..<n {
                        let row = matrix.baseAddress! + r * n
                        var dot = 0.0
                        for j in first..<n { dot += row[j] * v[j] }
                        dot *= 2
                        for j in first..<n { row[j] -= dot * v[j] }
                    }
                }
            }
        }
        if n >= 2 {
            diagonal[n - 2] = a[(n - 2) * n + n - 2]
            offDiagonal[n - 2] = a[(n - 1) * n + n - 2]
        }
        diagonal[n - 1] = a[(n - 1) * n + n - 1]
        offDiagonal[n - 1] = 0
    }

    /// Implicit QL on the tridiagonal (diagonal, offDiagonal); rotations are applied to the columns of q.
    private static func diagonalize(
        _ d: inout [Double], _ e: inout [Double], _ q: inout [Double], _ n: Int, accumulate: Bool
    ) throws {
        // A coupling below ulp·‖T‖ is negligible too: without this floor, clusters of (near) zero
        // eigenvalues, as in a covariance of fewer samples than features, never split off.
        let norm = (0..<n).reduce(0.0) {
            max($0, Swift.abs(d[$1]) + Swift.abs(e[$1]) + ($1 > 0 ? Swift.abs(e[$1 - 1]) : 0))
        }
        let floor = Double.ulpOfOne * norm
        for l in 0..<n {
            var iterations = 0
            while true {
                // The first negligible coupling at or after l splits off a block.
                var m = l
                while m < n - 1 {
                    let scale = Swift.abs(d[m]) + Swift.abs(d[m + 1])
                    if Swift.abs(e[m]) <= Double.ulpOfOne * scale || Swift.abs(e[m]) <= floor { break }
                    m += 1
                }
                if m == l { break }
                iterations += 1
                if iterations > 100 {
                    throw EvaluationError.numerical("eigenvalues: QL did not converge at row \(l) of \(n)")
                }
                // Wilkinson shift from the leading 2x2 block.
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = (g * g + 1).squareRoot()
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
                var (s, c, p) = (1.0, 1.0, 0.0)
                var underflow = false
                var i = m - 1
                while i >= l {
                    let f = s * e[i]
                    let b = c * e[i]
                    r = (f * f + g * g).squareRoot()
                    e[i + 1] = r
                    if r == 0 {
                        d[i + 1] -= p
                        e[m] = 0
                        underflow = true
                        break
                    }
                    s = f / r
                    c = g / r
                    g = d[i + 1] - p
                    r = (d[i] - g) * s + 2 * c * b
                    p = s * r
                    d[i + 1] = g + p
                    g = c * r - b
                    if accumulate {
                        q.withUnsafeMutableBufferPointer { z in
                            for k in 0..<n {
                                let (left, right) = (z[k * n + i], z[k * n + i + 1])
                                z[k * n + i + 1] = s * left + c * right
                                z[k * n + i] = c * left - s * right
                            }
                        }
                    }
                    i -= 1
                }
                if underflow { continue }
                d[l] -= p
                e[l] = g
                e[m] = 0
            }
        }
    }
}
