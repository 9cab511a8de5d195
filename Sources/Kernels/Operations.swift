/// Pointwise functions of one tensor.
public enum UnaryOperation: Hashable, Sendable {
    case relu
    /// x for x > 0, slope · x otherwise.
    case leakyRelu(slope: Float)
    case tanh
    case sqrt
    case exp
    case log
    case square
    case abs
    /// scale · x + shift.
    case affine(scale: Float, shift: Float)
}

/// Pointwise functions of two tensors, with NumPy broadcasting.
public enum BinaryOperation: Hashable, Sendable {
    case add, subtract, multiply, divide
}

/// What a pooling window computes.
public enum PoolOperation: Hashable, Sendable {
    /// The largest element; padding never wins.
    case max
    /// The mean of the window's elements inside the input: padding is not counted
    /// (PyTorch's count_include_pad=False, TensorFlow's SAME average pooling).
    case average
}

/// One Adam update's constants (PyTorch's form): m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// θ ← θ − (m / (√(v / c₂) + ε)) · (lr / c₁), with the bias corrections cᵢ = 1 − βᵢᵗ.
public struct AdamStep: Hashable, Sendable {
    public let learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let correction1: Float
    public let correction2: Float

    public init(learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, correction1: Float, correction2: Float)
    {
        (self.learningRate, self.beta1, self.beta2, self.epsilon) = (learningRate, beta1, beta2, epsilon)
        (self.correction1, self.correction2) = (correction1, correction2)
    }
}

/// Reductions over a set of axes.
public enum ReductionOperation: Hashable, Sendable {
    case sum, mean, max
}

/// Shape arithmetic shared by the backends.
public enum ShapeMath {
    /// The product of the dimensions.
    public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Row-major strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// Strides of an operand of shape `shape` read as if it had shape `target` (same rank):
    /// 0 along broadcast axes.
    public static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        return shape.indices.map { shape[$0] == 1 && target[$0] != 1 ? 0 : own[$0] }
    }

    /// The NumPy broadcast of two shapes (aligned at the right), or nil when they do not broadcast.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let paddedA = [Int](repeating: 1, count: rank - a.count) + a
        let paddedB = [Int](repeating: 1, count: rank - b.count) + b
        var result = [Int]()
        for (x, y) in zip(paddedA, paddedB) {
            if x == y || y == 1 { result.append(x) } else if x == 1 { result.append(y) } else { return nil }
        }
        return result
    }
}
