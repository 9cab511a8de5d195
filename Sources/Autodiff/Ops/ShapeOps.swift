import FileFormats
import Kernels

// Operations that change how elements are arranged: reshape, permute, slice, concatenate.

extension Tensor {
    /// The same elements with another shape of equal count; one dimension may be -1 (inferred).
    public func reshaped(to newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            require(known > 0 && count % known == 0, "reshaped(to:): cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = count / known
        }
        require(
            resolved.allSatisfy { $0 >= 0 } && ShapeMath.count(resolved) == count,
            "reshaped(to:): cannot reshape \(shape) (\(count) elements) to \(newShape)")
        let inputShape = shape
        // The storage is shared as it is, even in a backend layout: kernels read a layout for the
        // dims they are given (a reshape of nChw16c) or convert to row-major, which a reshape keeps.
        return Tensor.record("reshape", shape: resolved, storage: storage, inputs: [self]) { gradient, _ in
            [gradient.reshaped(to: inputShape)]
        }
    }

    /// (N, ...) → (N, product of the rest).
    public func flattened() -> Tensor {
        require(rank >= 1, "flattened(): needs at least one axis, shape is \(shape)")
        return reshaped(to: [shape[0], count / max(shape[0], 1)])
    }

    /// Output axis i is input axis `permutation[i]`.
    public func permuted(_ permutation: [Int]) -> Tensor {
        require(
            permutation.sorted() == Array(0..<rank),
            "permuted(_:): \(permutation) is not a permutation of the axes of shape \(shape)")
        let backend = EngineContext.backend
        let output = backend.permute(storage, shape: shape, permutation: permutation)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, axis) in permutation.enumerated() { inverse[axis] = i }
        return Tensor.record("permute", shape: permutation.map { shape[$0] }, storage: output, inputs: [self]) {
            gradient, _ in
            [gradient.permuted(inverse)]
        }
    }

    /// Swaps the last two axes.
    public func transposed() -> Tensor {
        require(rank >= 2, "transposed(): needs at least two axes, shape is \(shape)")
        var permutation = Array(0..<rank)
        permutation.swapAt(rank - 1, rank - 2)
        return permuted(permutation)
    }

    /// The elements with index in `range` along `axis`.
    public func sliced(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let resolved = axis < 0 ? axis + rank : axis
        require(
            resolved >= 0 && resolved < rank && range.lowerBound >= 0 && range.upperBound <= shape[resolved]
                && !range.isEmpty,
            "sliced(alongAxis:): range \(range) on axis \(axis) is out of bounds for shape \(shape)")
        let output = EngineContext.backend.slice(storage, shape: shape, axis: resolved, range: range)
        var outputShape = shape
        outputShape[resolved] = range.count
        let inputShape = shape
        return Tensor.record("slice", shape: outputShape, storage: output, inputs: [self]) { gradient, _ in
            var parts: [Tensor] = []
            var before = inputShape
            before[resolved] = range.lowerBound
            var after = inputShape
            after[resolved] = inputShape[resolved] - range.upperBound
            if range.lowerBound > 0 { parts.append(.zeros(before)) }
            parts.append(gradient)
            if after[resolved] > 0 { parts.append(.zeros(after)) }
            return [parts.count == 1 ? gradient : Tensor.concatenated(parts, alongAxis: resolved)]
        }
    }

    /// Joins tensors whose shapes agree except along `axis`.
    public static func concatenated(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
        require(!tensors.isEmpty, "concatenated: needs at least one tensor")
        let first = tensors[0]
        let resolved = axis < 0 ? axis + first.rank : axis
        require(
            resolved >= 0 && resolved < first.rank,
            "concatenated: axis \(axis) is out of range for shape \(first.shape)")
        for tensor in tensors {
            var expected = first.shape
            expected[resolved] = tensor.rank == first.rank ? tensor.shape[resolved] : -1
            require(
                tensor.shape == expected,
                "concatenated: shapes \(tensors.map(\.shape)) differ outside axis \(resolved)")
        }
        let output = EngineContext.backend.concat(tensors.map { ($0.storage, $0.shape) }, axis: resolved)
        var outputShape = first.shape
        outputShape[resolved] = tensors.reduce(0) { $0 + $1.shape[resolved] }
        let sizes = tensors.map { $0.shape[resolved] }
        return record("concat", shape: outputShape, storage: output, inputs: tensors) { gradient, wanted in
            var start = 0
            return sizes.enumerated().map { index, size in
                defer { start += size }
                return wanted[index] ? gradient.sliced(alongAxis: resolved, start..<(start + size)) : nil
            }
        }
    }
}
