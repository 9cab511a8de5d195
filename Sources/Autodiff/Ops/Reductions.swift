import FileFormats
import Kernels

// Sums and means over axes, and the broadcasting helpers their pullbacks need.

extension Tensor {
    /// Normalises axis numbers (negative counts from the end) and checks them.
    func resolvedAxes(_ axes: [Int], _ op: String) -> Set<Int> {
        Set(
            axes.map { axis in
                let resolved = axis < 0 ? axis + rank : axis
                require(resolved >= 0 && resolved < rank, "\(op): axis \(axis) is out of range for shape \(shape)")
                return resolved
            })
    }

    func reduction(_ op: ReductionOperation, axes: [Int], keepingDimensions: Bool, _ name: StaticString) -> Tensor {
        let reduced = resolvedAxes(axes, "\(name)")
        let keptShape = shape.indices.map { reduced.contains($0) ? 1 : shape[$0] }
        let finalShape =
            keepingDimensions ? keptShape : shape.indices.filter { !reduced.contains($0) }.map { shape[$0] }
        let backend = EngineContext.backend
        let output = backend.reduce(op, storage, shape: shape, outputShape: keptShape)
        let inputShape = shape
        let scale = Float(ShapeMath.count(keptShape)) / Float(max(count, 1))
        return Tensor.record(name, shape: finalShape, storage: output, inputs: [self]) { gradient, _ in
            let expanded = gradient.reshaped(to: keptShape).expanded(to: inputShape)
            return [op == .mean ? expanded * scale : expanded]
        }
    }

    /// Σ over `axes`.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        reduction(.sum, axes: axes, keepingDimensions: keepingDimensions, "sum")
    }

    /// Σ of all elements, as a rank-0 tensor.
    public func sum() -> Tensor { sum(alongAxes: Array(0..<rank)) }

    /// Mean over `axes`.
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        reduction(.mean, axes: axes, keepingDimensions: keepingDimensions, "mean")
    }

    /// Mean of all elements, as a rank-0 tensor.
    public func mean() -> Tensor { mean(alongAxes: Array(0..<rank)) }

    /// Repeats size-1 axes to reach `target` (which may also add leading axes).
    public func expanded(to target: [Int]) -> Tensor {
        guard target != shape else { return self }
        let aligned = [Int](repeating: 1, count: target.count - shape.count) + shape
        require(
            target.count >= rank && ShapeMath.broadcast(aligned, target) == target,
            "expanded(to:): shape \(shape) does not broadcast to \(target)")
        let output = EngineContext.backend.expand(storage, shape: aligned, outputShape: target)
        let inputShape = shape
        return Tensor.record("expand", shape: target, storage: output, inputs: [self]) { gradient, _ in
            [gradient.summed(toShape: inputShape)]
        }
    }

    /// Sums a broadcast result back to `target`, the shape of the operand that was broadcast.
    public func summed(toShape target: [Int]) -> Tensor {
        guard target != shape else { return self }
        let leading = rank - target.count
        let axes = shape.indices.filter { $0 < leading || target[$0 - leading] == 1 && shape[$0] != 1 }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(to: target)
    }
}
