/// The pure-Swift backend: `ReferenceKernels` in Float32 over row-major storages. It implements
/// the eight primitives; everything else is `DerivedOperations.swift`, the defaults every backend
/// inherits.
///
/// Under bf16 (a geometry's `precision`) it rounds the operands of each product to bf16, to
/// nearest even, and accumulates in Float32: the oracle other backends' bf16 paths are held to
/// (docs/model.md §9 lists the rounded operands).
public final class ReferenceBackend: Backend {
    public let id = BackendID.reference

    public init() {}

    public func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(g.outputShape))
        withHostOperands([input, weight, bias], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.conv2dForward(g, y: y.pointer, x: p[0]!, w: p[1]!, b: p[2])
        }
        return y
    }

    public func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        let dx = Storage(uninitializedCount: ShapeMath.count(g.inputShape))
        withHostOperands([outputGradient, weight], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.conv2dBackwardData(g, dx: dx.pointer, dy: p[0]!, w: p[1]!)
        }
        return dx
    }

    public func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    {
        let dw = Storage(uninitializedCount: ShapeMath.count(g.weightShape))
        let db = withBias ? Storage(uninitializedCount: g.outChannels) : nil
        withHostOperands([outputGradient, input], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.conv2dBackwardWeights(g, dw: dw.pointer, db: db?.pointer, dy: p[0]!, x: p[1]!)
        }
        return (dw, db)
    }

    public func unary(_ op: UnaryOperation, _ x: Storage) -> Storage {
        let y = Storage(uninitializedCount: x.count)
        withHostOperands([x]) { p in ReferenceKernels.unary(op, y: y.pointer, x: p[0]!, count: x.count) }
        return y
    }

    public func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    {
        let dx = Storage(uninitializedCount: input.count)
        withHostOperands([input, output, outputGradient]) { p in
            ReferenceKernels.unaryBackward(op, dx: dx.pointer, x: p[0]!, y: p[1]!, dy: p[2]!, count: input.count)
        }
        return dx
    }

    public func binary(
        _ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int]
    ) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        withHostOperands([a, b]) { p in
            ReferenceKernels.binary(
                op, y: y.pointer, outputShape: outputShape, a: p[0]!, aShape: aShape, b: p[1]!, bShape: bShape)
        }
        return y
    }

    public func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        withHostOperands([x]) { p in
            ReferenceKernels.reduce(op, y: y.pointer, outputShape: outputShape, x: p[0]!, shape: shape)
        }
        return y
    }

    public func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage {
        let c = Storage(uninitializedCount: g.batch * g.m * g.n)
        withHostOperands([a, b], roundedOperands: 2, g.precision) { p in
            ReferenceKernels.matmul(g, c: c.pointer, a: p[0]!, b: p[1]!)
        }
        return c
    }
}
