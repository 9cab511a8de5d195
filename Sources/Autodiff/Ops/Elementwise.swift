import Kernels

// Pointwise operations: the unary functions, scalar arithmetic and broadcasting binary arithmetic.

extension Tensor {
    /// Applies a unary kernel; the pullback uses the kernel's own backward.
    func unary(_ op: UnaryOperation, _ name: StaticString) -> Tensor {
        let backend = EngineContext.backend
        let input = storage
        let output = ResultPrecision.pointwise(backend.unary(op, input), operands: [input])
        return Tensor.record(name, shape: shape, storage: output, inputs: [self]) { gradient, _ in
            let dx = backend.unaryBackward(op, input: input, output: output, outputGradient: gradient.storage)
            return [
                Tensor(
                    shape: gradient.shape,
                    storage: ResultPrecision.pointwise(dx, operands: [input, gradient.storage]))
            ]
        }
    }

    public func relu() -> Tensor { unary(.relu, "relu") }
    /// x for x > 0, slope · x otherwise.
    public func leakyRelu(slope: Float) -> Tensor { unary(.leakyRelu(slope: slope), "leakyRelu") }
    public func tanh() -> Tensor { unary(.tanh, "tanh") }
    public func sqrt() -> Tensor { unary(.sqrt, "sqrt") }
    public func exp() -> Tensor { unary(.exp, "exp") }
    public func log() -> Tensor { unary(.log, "log") }
    public func squared() -> Tensor { unary(.square, "square") }
    public func abs() -> Tensor { unary(.abs, "abs") }
    /// scale · x + shift in one pass.
    public func affine(scale: Float, shift: Float) -> Tensor { unary(.affine(scale: scale, shift: shift), "affine") }

    public static prefix func - (x: Tensor) -> Tensor { x.affine(scale: -1, shift: 0) }
    public static func * (x: Tensor, s: Float) -> Tensor { x.affine(scale: s, shift: 0) }
    public static func * (s: Float, x: Tensor) -> Tensor { x.affine(scale: s, shift: 0) }
    public static func / (x: Tensor, s: Float) -> Tensor { x.affine(scale: 1 / s, shift: 0) }
    public static func + (x: Tensor, s: Float) -> Tensor { x.affine(scale: 1, shift: s) }
    public static func + (s: Float, x: Tensor) -> Tensor { x.affine(scale: 1, shift: s) }
    public static func - (x: Tensor, s: Float) -> Tensor { x.affine(scale: 1, shift: -s) }
    public static func - (s: Float, x: Tensor) -> Tensor { x.affine(scale: -1, shift: s) }
}

extension Tensor {
    /// a ∘ b with NumPy broadcasting; the pullback sums gradients back to each operand's shape.
    static func binary(_ op: BinaryOperation, _ a: Tensor, _ b: Tensor, _ name: StaticString) -> Tensor {
        guard let outputShape = ShapeMath.broadcast(a.shape, b.shape) else {
            fatalError("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let backend = EngineContext.backend
        let aligned = { (shape: [Int]) in [Int](repeating: 1, count: outputShape.count - shape.count) + shape }
        let output = ResultPrecision.pointwise(
            backend.binary(op, a.storage, aligned(a.shape), b.storage, aligned(b.shape), outputShape: outputShape),
            operands: [a.storage, b.storage])
        let aValue = a.detached()
        let bValue = b.detached()
        return record(name, shape: outputShape, storage: output, inputs: [a, b]) { gradient, wanted in
            let outputValue = Tensor(shape: outputShape, storage: output)
            var da: Tensor?
            var db: Tensor?
            switch op {
            case .add:
                if wanted[0] { da = gradient }
                if wanted[1] { db = gradient }
            case .subtract:
                if wanted[0] { da = gradient }
                if wanted[1] { db = -gradient }
            case .multiply:
                if wanted[0] { da = gradient * bValue }
                if wanted[1] { db = gradient * aValue }
            case .divide:
                if wanted[0] { da = gradient / bValue }
                if wanted[1] { db = -(gradient * outputValue / bValue) }
            }
            return [da?.summed(toShape: aValue.shape), db?.summed(toShape: bValue.shape)]
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b, "add") }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.subtract, a, b, "subtract") }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.multiply, a, b, "multiply") }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.divide, a, b, "divide") }
}
