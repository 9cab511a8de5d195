extension ReferenceKernels {
    /// y = the maximum, or the mean over the positions inside the input, of each window.
    /// Max ties go to the first element in row-major window order.
    public static func pool2d<T: ReferenceScalar>(
        _ op: PoolOperation, _ g: Pool2DGeometry, y: UnsafeMutablePointer<T>, x: UnsafePointer<T>
    ) {
        for plane in 0..<(g.batch * g.channels) {
            for i in 0..<g.outHeight {
                for j in 0..<g.outWidth {
                    let output = (plane * g.outHeight + i) * g.outWidth + j
                    switch op {
                    case .max: y[output] = x[windowArgmax(g, x: x, plane: plane, i: i, j: j)]
                    case .average:
                        var sum: T = 0
                        for row in g.rows(i) {
                            for column in g.columns(j) { sum += x[(plane * g.inHeight + row) * g.inWidth + column] }
                        }
                        y[output] = sum / T(g.rows(i).count * g.columns(j).count)
                    }
                }
            }
        }
    }

    /// Max: routes each dy to the input position that won its window. Average: spreads dy evenly
    /// over the window's positions inside the input. Overlapping windows add up.
    public static func pool2dBackward<T: ReferenceScalar>(
        _ op: PoolOperation, _ g: Pool2DGeometry, dx: UnsafeMutablePointer<T>, x: UnsafePointer<T>, dy: UnsafePointer<T>
    ) {
        dx.initialize(repeating: 0, count: g.batch * g.channels * g.inHeight * g.inWidth)
        for plane in 0..<(g.batch * g.channels) {
            for i in 0..<g.outHeight {
                for j in 0..<g.outWidth {
                    let gradient = dy[(plane * g.outHeight + i) * g.outWidth + j]
                    switch op {
                    case .max: dx[windowArgmax(g, x: x, plane: plane, i: i, j: j)] += gradient
                    case .average:
                        let share = gradient / T(g.rows(i).count * g.columns(j).count)
                        for row in g.rows(i) {
                            for column in g.columns(j) { dx[(plane * g.inHeight + row) * g.inWidth + column] += share }
                        }
                    }
                }
            }
        }
    }

    private static func windowArgmax<T: ReferenceScalar>(
        _ g: Pool2DGeometry, x: UnsafePointer<T>, plane: Int, i: Int, j: Int
    ) -> Int {
        var best = -1
        for row in g.rows(i) {
            for column in g.columns(j) {
                let index = (plane * g.inHeight + row) * g.inWidth + column
                if best < 0 || x[index] > x[best] { best = index }
            }
        }
        return best
    }

    /// y has shape `shape` permuted: y axis i is x axis `permutation[i]`.
    public static func permute<T: ReferenceScalar>(
        y: UnsafeMutablePointer<T>, x: UnsafePointer<T>, shape: [Int], permutation: [Int]
    ) {
        let inputStrides = ShapeMath.strides(shape)
        let outputShape = permutation.map { shape[$0] }
        let gatherStrides = permutation.map { inputStrides[$0] }
        forEachIndex(outputShape) { linear, index in
            var offset = 0
            for axis in index.indices { offset += index[axis] * gatherStrides[axis] }
            y[linear] = x[offset]
        }
    }

    /// Copies parts, each (outer, partAxis·inner) in row-major order, side by side along `axis`.
    public static func concat<T: ReferenceScalar>(
        y: UnsafeMutablePointer<T>, parts: [(pointer: UnsafePointer<T>, shape: [Int])], axis: Int
    ) {
        guard let first = parts.first else { return }
        let outer = ShapeMath.count(Array(first.shape[..<axis]))
        let inner = ShapeMath.count(Array(first.shape[(axis + 1)...]))
        let totalAxis = parts.reduce(0) { $0 + $1.shape[axis] }
        var axisOffset = 0
        for part in parts {
            let chunk = part.shape[axis] * inner
            for o in 0..<outer {
                (y + (o * totalAxis + axisOffset) * inner).update(from: part.pointer + o * chunk, count: chunk)
            }
            axisOffset += part.shape[axis]
        }
    }
}

extension ReferenceKernels {
    /// y over `outputShape` reads x through broadcast strides.
    public static func expand<T: ReferenceScalar>(
        y: UnsafeMutablePointer<T>, outputShape: [Int], x: UnsafePointer<T>, shape: [Int]
    ) {
        let strides = ShapeMath.broadcastStrides(shape, to: outputShape)
        forEachIndex(outputShape) { linear, index in
            var offset = 0
            for axis in index.indices { offset += index[axis] * strides[axis] }
            y[linear] = x[offset]
        }
    }

    /// y = x[..., range, ...] along `axis`.
    public static func slice<T: ReferenceScalar>(
        y: UnsafeMutablePointer<T>, x: UnsafePointer<T>, shape: [Int], axis: Int, range: Range<Int>
    ) {
        let outer = ShapeMath.count(Array(shape[..<axis]))
        let inner = ShapeMath.count(Array(shape[(axis + 1)...]))
        for o in 0..<outer {
            (y + o * range.count * inner).update(
                from: x + (o * shape[axis] + range.lowerBound) * inner, count: range.count * inner)
        }
    }
}
