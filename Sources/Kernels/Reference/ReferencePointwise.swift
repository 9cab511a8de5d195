extension ReferenceKernels {
    public static func unary<T: ReferenceScalar>(
        _ op: UnaryOperation, y: UnsafeMutablePointer<T>, x: UnsafePointer<T>, count: Int
    ) {
        for i in 0..<count { y[i] = apply(op, x[i]) }
    }

    static func apply<T: ReferenceScalar>(_ op: UnaryOperation, _ x: T) -> T {
        switch op {
        case .relu: return x > 0 ? x : 0
        case .leakyRelu(let slope): return x > 0 ? x : T(slope) * x
        case .tanh: return T.hyperbolicTangent(x)
        case .sqrt: return T.squareRoot(x)
        case .exp: return T.exponential(x)
        case .log: return T.logarithm(x)
        case .square: return x * x
        case .abs: return x < 0 ? -x : x
        case .affine(let scale, let shift): return T(scale) * x + T(shift)
        }
    }

    /// dx = f′ · dy, with f′ taken from the input x or the output y, whichever is simpler. At the
    /// kinks of relu, leaky relu and abs the derivative taken is that of the x ≤ 0 side.
    public static func unaryBackward<T: ReferenceScalar>(
        _ op: UnaryOperation, dx: UnsafeMutablePointer<T>, x: UnsafePointer<T>, y: UnsafePointer<T>,
        dy: UnsafePointer<T>, count: Int
    ) {
        for i in 0..<count {
            let derivative: T
            switch op {
            case .relu: derivative = x[i] > 0 ? 1 : 0
            case .leakyRelu(let slope): derivative = x[i] > 0 ? 1 : T(slope)
            case .tanh: derivative = 1 - y[i] * y[i]
            case .sqrt: derivative = 1 / (2 * y[i])
            case .exp: derivative = y[i]
            case .log: derivative = 1 / x[i]
            case .square: derivative = 2 * x[i]
            case .abs: derivative = x[i] > 0 ? 1 : (x[i] < 0 ? -1 : 0)
            case .affine(let scale, _): derivative = T(scale)
            }
            dx[i] = derivative * dy[i]
        }
    }

    /// y = a ∘ b over `outputShape`, reading a and b through broadcast strides (same rank).
    public static func binary<T: ReferenceScalar>(
        _ op: BinaryOperation, y: UnsafeMutablePointer<T>, outputShape: [Int],
        a: UnsafePointer<T>, aShape: [Int], b: UnsafePointer<T>, bShape: [Int]
    ) {
        let aStrides = ShapeMath.broadcastStrides(aShape, to: outputShape)
        let bStrides = ShapeMath.broadcastStrides(bShape, to: outputShape)
        forEachIndex(outputShape) { linear, index in
            var aOffset = 0
            var bOffset = 0
            for axis in index.indices {
                aOffset += index[axis] * aStrides[axis]
                bOffset += index[axis] * bStrides[axis]
            }
            let l = a[aOffset]
            let r = b[bOffset]
            switch op {
            case .add: y[linear] = l + r
            case .subtract: y[linear] = l - r
            case .multiply: y[linear] = l * r
            case .divide: y[linear] = l / r
            }
        }
    }

    /// Calls `body` with each row-major linear index of `shape` and its multi-index.
    static func forEachIndex(_ shape: [Int], _ body: (Int, [Int]) -> Void) {
        let count = ShapeMath.count(shape)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for linear in 0..<count {
            body(linear, index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

extension ReferenceKernels {
    /// Adam (see `AdamStep`) on elements `range`; nil moments count as zeros.
    public static func adamUpdate<T: ReferenceScalar>(
        _ step: AdamStep, range: Range<Int>, parameterOut: UnsafeMutablePointer<T>, firstOut: UnsafeMutablePointer<T>,
        secondOut: UnsafeMutablePointer<T>, parameter: UnsafePointer<T>, gradient: UnsafePointer<T>,
        first: UnsafePointer<T>?, second: UnsafePointer<T>?
    ) {
        let (beta1, beta2, epsilon) = (T(step.beta1), T(step.beta2), T(step.epsilon))
        let (oneMinusBeta1, oneMinusBeta2) = (T(1 - step.beta1), T(1 - step.beta2))
        let stepSize = T(step.learningRate / step.correction1)
        let correction2 = T(step.correction2)
        for i in range {
            let g = gradient[i]
            let m = (first.map { $0[i] } ?? 0) * beta1 + g * oneMinusBeta1
            let v = (second.map { $0[i] } ?? 0) * beta2 + g * g * oneMinusBeta2
            firstOut[i] = m
            secondOut[i] = v
            parameterOut[i] = parameter[i] - m / ((v / correction2).squareRoot() + epsilon) * stepSize
        }
    }
}
