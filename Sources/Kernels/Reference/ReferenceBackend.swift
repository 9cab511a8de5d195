/// The pure-Swift backend: `ReferenceKernels` in Float32 over row-major storages.
///
/// Under bf16 (a geometry's `precision`) it rounds the operands of each product to bf16, to
/// nearest even, and accumulates in Float32: the oracle other backends' bf16 paths are held to
/// (docs/model.md §9 lists the rounded operands).
public final class ReferenceBackend: Backend {
    public let name = "reference"

    public init() {}

    func plain(_ s: Storage) -> UnsafePointer<Float> { UnsafePointer(s.rowMajor().pointer) }

    /// Runs `body` with plain pointers; keeps the row-major copies alive for the duration. The
    /// first `roundedOperands` storages are read rounded to bf16 when `precision` is bf16.
    func reading<R>(
        _ storages: [Storage?], roundedOperands: Int = 0, _ precision: Precision = .fp32,
        _ body: ([UnsafePointer<Float>?]) -> R
    ) -> R {
        let plainStorages = storages.enumerated().map { index, storage in
            index < roundedOperands && precision == .bf16 ? storage.map(roundedToBF16) : storage?.rowMajor()
        }
        return withExtendedLifetime(plainStorages) {
            body(plainStorages.map { $0.map { UnsafePointer($0.pointer) } })
        }
    }

    public func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(g.outputShape))
        reading([input, weight, bias], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.conv2dForward(g, y: y.pointer, x: p[0]!, w: p[1]!, b: p[2])
        }
        return y
    }

    public func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        let dx = Storage(uninitializedCount: ShapeMath.count(g.inputShape))
        reading([outputGradient, weight], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.conv2dBackwardData(g, dx: dx.pointer, dy: p[0]!, w: p[1]!)
        }
        return dx
    }

    public func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    {
        let dw = Storage(uninitializedCount: ShapeMath.count(g.weightShape))
        let db = withBias ? Storage(uninitializedCount: g.outChannels) : nil
        reading([outputGradient, input], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.conv2dBackwardWeights(g, dw: dw.pointer, db: db?.pointer, dy: p[0]!, x: p[1]!)
        }
        return (dw, db)
    }

    public func batchNormTraining(_ g: BatchNormGeometry, input: Storage, scale: Storage?, shift: Storage?)
        -> (output: Storage, mean: Storage, variance: Storage)
    {
        let y = Storage(uninitializedCount: g.count)
        let mean = Storage(uninitializedCount: g.channels)
        let variance = Storage(uninitializedCount: g.channels)
        reading([input, scale, shift]) { p in
            ReferenceKernels.batchNormTraining(
                g, y: y.pointer, mean: mean.pointer, variance: variance.pointer, x: p[0]!, scale: p[1], shift: p[2])
        }
        return (y, mean, variance)
    }

    public func batchNormInference(
        _ g: BatchNormGeometry, input: Storage, mean: Storage, variance: Storage, scale: Storage?, shift: Storage?
    ) -> Storage {
        let y = Storage(uninitializedCount: g.count)
        reading([input, mean, variance, scale, shift]) { p in
            ReferenceKernels.batchNormInference(
                g, y: y.pointer, x: p[0]!, mean: p[1]!, variance: p[2]!, scale: p[3], shift: p[4])
        }
        return y
    }

    public func batchNormBackward(
        _ g: BatchNormGeometry, input: Storage, outputGradient: Storage, mean: Storage, variance: Storage,
        scale: Storage?, withParameters: Bool
    ) -> (input: Storage, scale: Storage?, shift: Storage?) {
        let dx = Storage(uninitializedCount: g.count)
        let dScale = withParameters && scale != nil ? Storage(uninitializedCount: g.channels) : nil
        let dShift = withParameters ? Storage(uninitializedCount: g.channels) : nil
        reading([outputGradient, input, mean, variance, scale]) { p in
            ReferenceKernels.batchNormBackward(
                g, dx: dx.pointer, dScale: dScale?.pointer, dShift: dShift?.pointer,
                dy: p[0]!, x: p[1]!, mean: p[2]!, variance: p[3]!, scale: p[4])
        }
        return (dx, dScale, dShift)
    }

    public func unary(_ op: UnaryOperation, _ x: Storage) -> Storage {
        let y = Storage(uninitializedCount: x.count)
        ReferenceKernels.unary(op, y: y.pointer, x: plain(x), count: x.count)
        return y
    }

    public func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    {
        let dx = Storage(uninitializedCount: input.count)
        reading([input, output, outputGradient]) { p in
            ReferenceKernels.unaryBackward(op, dx: dx.pointer, x: p[0]!, y: p[1]!, dy: p[2]!, count: input.count)
        }
        return dx
    }

    public func binary(
        _ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int]
    ) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        reading([a, b]) { p in
            ReferenceKernels.binary(
                op, y: y.pointer, outputShape: outputShape, a: p[0]!, aShape: aShape, b: p[1]!, bShape: bShape)
        }
        return y
    }

    public func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        ReferenceKernels.reduce(op, y: y.pointer, outputShape: outputShape, x: plain(x), shape: shape)
        return y
    }

    public func softmax(_ x: Storage, rows: Int, columns: Int) -> Storage {
        let y = Storage(uninitializedCount: rows * columns)
        ReferenceKernels.softmax(y: y.pointer, x: plain(x), rows: rows, columns: columns)
        return y
    }

    public func softmaxBackward(output: Storage, outputGradient: Storage, rows: Int, columns: Int) -> Storage {
        let dx = Storage(uninitializedCount: rows * columns)
        reading([output, outputGradient]) { p in
            ReferenceKernels.softmaxBackward(dx: dx.pointer, y: p[0]!, dy: p[1]!, rows: rows, columns: columns)
        }
        return dx
    }

    public func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage {
        let c = Storage(uninitializedCount: g.batch * g.m * g.n)
        reading([a, b], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.matmul(g, c: c.pointer, a: p[0]!, b: p[1]!)
        }
        return c
    }

    public func spectralNorm(_ g: SpectralNormGeometry, weight: Storage, u: Storage, v: Storage, powerIteration: Bool)
        -> (weight: Storage, sigma: Float, u: Storage, v: Storage)
    {
        let normalized = Storage(uninitializedCount: g.count)
        let (newU, newV) = (Storage(uninitializedCount: g.outputs), Storage(uninitializedCount: g.rightCount))
        let sigma = reading([weight, u, v]) { p in
            ReferenceKernels.spectralNorm(
                g, normalizedOut: normalized.pointer, uOut: newU.pointer, vOut: newV.pointer,
                weight: p[0]!, u: p[1]!, v: p[2]!, powerIteration: powerIteration)
        }
        return (normalized, sigma, newU, newV)
    }

    public func spectralNormBackward(
        _ g: SpectralNormGeometry, weight: Storage, outputGradient: Storage, u: Storage, v: Storage,
        sigma: Float
    ) -> Storage {
        let dw = Storage(uninitializedCount: g.count)
        reading([weight, outputGradient, u, v]) { p in
            ReferenceKernels.spectralNormBackward(
                g, weightGradientOut: dw.pointer, weight: p[0]!, outputGradient: p[1]!,
                u: p[2]!, v: p[3]!, sigma: sigma)
        }
        return dw
    }

    public func adamUpdate(_ step: AdamStep, parameter: Storage, gradient: Storage, first: Storage?, second: Storage?)
        -> (parameter: Storage, first: Storage, second: Storage)
    {
        let count = parameter.count
        let (p, m, v) = (
            Storage(uninitializedCount: count), Storage(uninitializedCount: count), Storage(uninitializedCount: count)
        )
        reading([parameter, gradient, first, second]) { inputs in
            ReferenceKernels.adamUpdate(
                step, range: 0..<count, parameterOut: p.pointer, firstOut: m.pointer, secondOut: v.pointer,
                parameter: inputs[0]!, gradient: inputs[1]!, first: inputs[2], second: inputs[3])
        }
        return (p, m, v)
    }

    public func pool2d(_ op: PoolOperation, _ g: Pool2DGeometry, _ x: Storage) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(g.outputShape))
        ReferenceKernels.pool2d(op, g, y: y.pointer, x: plain(x))
        return y
    }

    public func pool2dBackward(_ op: PoolOperation, _ g: Pool2DGeometry, input: Storage, outputGradient: Storage)
        -> Storage
    {
        let dx = Storage(uninitializedCount: input.count)
        reading([input, outputGradient]) { p in
            ReferenceKernels.pool2dBackward(op, g, dx: dx.pointer, x: p[0]!, dy: p[1]!)
        }
        return dx
    }

    public func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage {
        let y = Storage(uninitializedCount: x.count)
        ReferenceKernels.permute(y: y.pointer, x: plain(x), shape: shape, permutation: permutation)
        return y
    }

    public func concat(_ parts: [(storage: Storage, shape: [Int])], axis: Int) -> Storage {
        let total = parts.reduce(0) { $0 + $1.storage.count }
        let y = Storage(uninitializedCount: total)
        reading(parts.map { $0.storage }) { p in
            ReferenceKernels.concat(y: y.pointer, parts: zip(p, parts).map { ($0!, $1.shape) }, axis: axis)
        }
        return y
    }
}

extension ReferenceBackend {
    public func expand(_ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        ReferenceKernels.expand(y: y.pointer, outputShape: outputShape, x: plain(x), shape: shape)
        return y
    }

    public func slice(_ x: Storage, shape: [Int], axis: Int, range: Range<Int>) -> Storage {
        var outputShape = shape
        outputShape[axis] = range.count
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        ReferenceKernels.slice(y: y.pointer, x: plain(x), shape: shape, axis: axis, range: range)
        return y
    }
}

extension ReferenceBackend {
    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let o = Storage(uninitializedCount: g.batch * g.valueChannels * g.queries)
        reading([queries, keys, values], roundedOperands: 3, g.precision) { p in
            ReferenceKernels.attention(
                g, o: o.pointer, q: p[0]!, k: p[1]!, v: p[2]!, operand: Self.operandRounding(g.precision))
        }
        return o
    }

    public func attentionBackward(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    )
        -> (queries: Storage, keys: Storage, values: Storage)
    {
        let dq = Storage(uninitializedCount: queries.count)
        let dk = Storage(uninitializedCount: keys.count)
        let dv = Storage(uninitializedCount: values.count)
        reading([queries, keys, values, outputGradient], roundedOperands: 4, g.precision) { p in
            ReferenceKernels.attentionBackward(
                g, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, q: p[0]!, k: p[1]!, v: p[2]!, dO: p[3]!,
                operand: Self.operandRounding(g.precision))
        }
        return (dq, dk, dv)
    }
}

extension ReferenceBackend {
    /// A row-major copy of `storage` with every element rounded to bf16.
    func roundedToBF16(_ storage: Storage) -> Storage {
        let copy = storage.ownedRowMajorCopy()
        BFloat16.round(copy.pointer, count: storage.count)
        return copy
    }

    /// How the attention kernels read the operands they compute inside (P, dS) in `precision`.
    static func operandRounding(_ precision: Precision) -> (Float) -> Float {
        if precision == .bf16 { return { (x: Float) -> Float in BFloat16.round(x) } }
        return { (x: Float) -> Float in x }
    }
}
