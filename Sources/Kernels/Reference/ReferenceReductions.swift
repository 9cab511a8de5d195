extension ReferenceKernels {
    /// Reduces x of `shape` to y of `outputShape` (same rank, 1 along reduced axes).
    public static func reduce<T: ReferenceScalar>(
        _ op: ReductionOperation, y: UnsafeMutablePointer<T>, outputShape: [Int], x: UnsafePointer<T>, shape: [Int]
    ) {
        let outputCount = ShapeMath.count(outputShape)
        let reduced = ShapeMath.count(shape) / max(outputCount, 1)
        let outputStrides = ShapeMath.broadcastStrides(outputShape, to: shape)
        var seen = [Bool](repeating: false, count: outputCount)
        y.initialize(repeating: 0, count: outputCount)
        forEachIndex(shape) { linear, index in
            var offset = 0
            for axis in index.indices { offset += index[axis] * outputStrides[axis] }
            switch op {
            case .sum, .mean: y[offset] += x[linear]
            case .max:
                if !seen[offset] || x[linear] > y[offset] { y[offset] = x[linear] }
                seen[offset] = true
            }
        }
        if op == .mean {
            for i in 0..<outputCount { y[i] /= T(reduced) }
        }
    }

    /// Numerically stable softmax of each row: y[r, :] = exp(x[r, :] − max) / Σ exp(x[r, :] − max).
    public static func softmax<T: ReferenceScalar>(
        y: UnsafeMutablePointer<T>, x: UnsafePointer<T>, rows: Int, columns: Int
    ) {
        for r in 0..<rows {
            let row = r * columns
            var largest = x[row]
            for c in 0..<columns where x[row + c] > largest { largest = x[row + c] }
            var total: T = 0
            for c in 0..<columns {
                y[row + c] = T.exponential(x[row + c] - largest)
                total += y[row + c]
            }
            for c in 0..<columns { y[row + c] /= total }
        }
    }

    /// dx = y ⊙ (dy − Σ_row dy ⊙ y).
    public static func softmaxBackward<T: ReferenceScalar>(
        dx: UnsafeMutablePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>, rows: Int, columns: Int
    ) {
        for r in 0..<rows {
            let row = r * columns
            var dot: T = 0
            for c in 0..<columns { dot += dy[row + c] * y[row + c] }
            for c in 0..<columns { dx[row + c] = y[row + c] * (dy[row + c] - dot) }
        }
    }

    /// C[b] = op(A[b]) · op(B[b]) as described by `MatmulGeometry`.
    public static func matmul<T: ReferenceScalar>(
        _ g: MatmulGeometry, c: UnsafeMutablePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>
    ) {
        for batch in 0..<g.batch {
            let aBase = (g.batchA == 1 ? 0 : batch) * g.m * g.k
            let bBase = (g.batchB == 1 ? 0 : batch) * g.k * g.n
            let cBase = batch * g.m * g.n
            for i in 0..<g.m {
                for j in 0..<g.n {
                    var sum: T = 0
                    for p in 0..<g.k {
                        let left = g.transposeA ? a[aBase + p * g.m + i] : a[aBase + i * g.k + p]
                        let right = g.transposeB ? b[bBase + j * g.k + p] : b[bBase + p * g.n + j]
                        sum += left * right
                    }
                    c[cBase + i * g.n + j] = sum
                }
            }
        }
    }
}
