/// The operations a backend inherits unless it overrides them: each runs its reference kernel on
/// host copies of the operands (`Storage.onHost()`) and hands the result to the backend's memory
/// (`fromHost`). Correct on any backend and device; fast only where composition would not be
/// faster anyway. The reference backend is exactly these plus its eight primitives.
extension Backend {
    public func batchNormTraining(_ g: BatchNormGeometry, input: Storage, scale: Storage?, shift: Storage?)
        -> (output: Storage, mean: Storage, variance: Storage)
    {
        let y = Storage(uninitializedCount: g.count)
        let mean = Storage(uninitializedCount: g.channels)
        let variance = Storage(uninitializedCount: g.channels)
        withHostOperands([input, scale, shift]) { p in
            ReferenceKernels.batchNormTraining(
                g, y: y.pointer, mean: mean.pointer, variance: variance.pointer, x: p[0]!, scale: p[1], shift: p[2])
        }
        return (fromHost(y), fromHost(mean), fromHost(variance))
    }

    public func batchNormInference(
        _ g: BatchNormGeometry, input: Storage, mean: Storage, variance: Storage, scale: Storage?, shift: Storage?
    ) -> Storage {
        let y = Storage(uninitializedCount: g.count)
        withHostOperands([input, mean, variance, scale, shift]) { p in
            ReferenceKernels.batchNormInference(
                g, y: y.pointer, x: p[0]!, mean: p[1]!, variance: p[2]!, scale: p[3], shift: p[4])
        }
        return fromHost(y)
    }

    public func batchNormBackward(
        _ g: BatchNormGeometry, input: Storage, outputGradient: Storage, mean: Storage, variance: Storage,
        scale: Storage?, withParameters: Bool
    ) -> (input: Storage, scale: Storage?, shift: Storage?) {
        let dx = Storage(uninitializedCount: g.count)
        let dScale = withParameters && scale != nil ? Storage(uninitializedCount: g.channels) : nil
        let dShift = withParameters ? Storage(uninitializedCount: g.channels) : nil
        withHostOperands([outputGradient, input, mean, variance, scale]) { p in
            ReferenceKernels.batchNormBackward(
                g, dx: dx.pointer, dScale: dScale?.pointer, dShift: dShift?.pointer,
                dy: p[0]!, x: p[1]!, mean: p[2]!, variance: p[3]!, scale: p[4])
        }
        return (fromHost(dx), dScale.map(fromHost), dShift.map(fromHost))
    }

    public func softmax(_ x: Storage, rows: Int, columns: Int) -> Storage {
        let y = Storage(uninitializedCount: rows * columns)
        withHostOperands([x]) { p in ReferenceKernels.softmax(y: y.pointer, x: p[0]!, rows: rows, columns: columns) }
        return fromHost(y)
    }

    public func softmaxBackward(output: Storage, outputGradient: Storage, rows: Int, columns: Int) -> Storage {
        let dx = Storage(uninitializedCount: rows * columns)
        withHostOperands([output, outputGradient]) { p in
            ReferenceKernels.softmaxBackward(dx: dx.pointer, y: p[0]!, dy: p[1]!, rows: rows, columns: columns)
        }
        return fromHost(dx)
    }

    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let o = Storage(uninitializedCount: g.batch * g.valueChannels * g.queries)
        withHostOperands([queries, keys, values], roundedOperands: 3, g.precision) { p in
            ReferenceKernels.attention(
                g, o: o.pointer, q: p[0]!, k: p[1]!, v: p[2]!, operand: operandRounding(g.precision))
        }
        return fromHost(o)
    }

    public func attentionBackward(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    )
        -> (queries: Storage, keys: Storage, values: Storage)
    {
        let dq = Storage(uninitializedCount: queries.count)
        let dk = Storage(uninitializedCount: keys.count)
        let dv = Storage(uninitializedCount: values.count)
        withHostOperands([queries, keys, values, outputGradient], roundedOperands: 4, g.precision) { p in
            ReferenceKernels.attentionBackward(
                g, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, q: p[0]!, k: p[1]!, v: p[2]!, dO: p[3]!,
                operand: operandRounding(g.precision))
        }
        return (fromHost(dq), fromHost(dk), fromHost(dv))
    }

    public func spectralNorm(_ g: SpectralNormGeometry, weight: Storage, u: Storage, v: Storage, powerIteration: Bool)
        -> (weight: Storage, sigma: Float, u: Storage, v: Storage)
    {
        let normalized = Storage(uninitializedCount: g.count)
        let (newU, newV) = (Storage(uninitializedCount: g.outputs), Storage(uninitializedCount: g.rightCount))
        let sigma = withHostOperands([weight, u, v]) { p in
            ReferenceKernels.spectralNorm(
                g, normalizedOut: normalized.pointer, uOut: newU.pointer, vOut: newV.pointer,
                weight: p[0]!, u: p[1]!, v: p[2]!, powerIteration: powerIteration)
        }
        return (fromHost(normalized), sigma, fromHost(newU), fromHost(newV))
    }

    public func spectralNormBackward(
        _ g: SpectralNormGeometry, weight: Storage, outputGradient: Storage, u: Storage, v: Storage,
        sigma: Float
    ) -> Storage {
        let dw = Storage(uninitializedCount: g.count)
        withHostOperands([weight, outputGradient, u, v]) { p in
            ReferenceKernels.spectralNormBackward(
                g, weightGradientOut: dw.pointer, weight: p[0]!, outputGradient: p[1]!,
                u: p[2]!, v: p[3]!, sigma: sigma)
        }
        return fromHost(dw)
    }

    public func adamUpdate(_ step: AdamStep, parameter: Storage, gradient: Storage, first: Storage?, second: Storage?)
        -> (parameter: Storage, first: Storage, second: Storage)
    {
        let count = parameter.count
        let (p, m, v) = (
            Storage(uninitializedCount: count), Storage(uninitializedCount: count), Storage(uninitializedCount: count)
        )
        withHostOperands([parameter, gradient, first, second]) { inputs in
            ReferenceKernels.adamUpdate(
                step, range: 0..<count, parameterOut: p.pointer, firstOut: m.pointer, secondOut: v.pointer,
                parameter: inputs[0]!, gradient: inputs[1]!, first: inputs[2], second: inputs[3])
        }
        return (fromHost(p), fromHost(m), fromHost(v))
    }

    public func pool2d(_ op: PoolOperation, _ g: Pool2DGeometry, _ x: Storage) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(g.outputShape))
        withHostOperands([x]) { p in ReferenceKernels.pool2d(op, g, y: y.pointer, x: p[0]!) }
        return fromHost(y)
    }

    public func pool2dBackward(_ op: PoolOperation, _ g: Pool2DGeometry, input: Storage, outputGradient: Storage)
        -> Storage
    {
        let dx = Storage(uninitializedCount: input.count)
        withHostOperands([input, outputGradient]) { p in
            ReferenceKernels.pool2dBackward(op, g, dx: dx.pointer, x: p[0]!, dy: p[1]!)
        }
        return fromHost(dx)
    }

    public func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage {
        let y = Storage(uninitializedCount: x.count, precision: x.precision)
        withHostOperands([x]) { p in
            ReferenceKernels.permute(y: y.pointer, x: p[0]!, shape: shape, permutation: permutation)
        }
        return fromHost(y)
    }

    public func expand(_ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape), precision: x.precision)
        withHostOperands([x]) { p in
            ReferenceKernels.expand(y: y.pointer, outputShape: outputShape, x: p[0]!, shape: shape)
        }
        return fromHost(y)
    }

    public func slice(_ x: Storage, shape: [Int], axis: Int, range: Range<Int>) -> Storage {
        var outputShape = shape
        outputShape[axis] = range.count
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape), precision: x.precision)
        withHostOperands([x]) { p in
            ReferenceKernels.slice(y: y.pointer, x: p[0]!, shape: shape, axis: axis, range: range)
        }
        return fromHost(y)
    }

    public func concat(_ parts: [(storage: Storage, shape: [Int])], axis: Int) -> Storage {
        let total = parts.reduce(0) { $0 + $1.storage.count }
        let allBF16 = parts.allSatisfy { $0.storage.precision == .bf16 }
        let y = Storage(uninitializedCount: total, precision: allBF16 ? .bf16 : .fp32)
        withHostOperands(parts.map { $0.storage }) { p in
            ReferenceKernels.concat(y: y.pointer, parts: zip(p, parts).map { ($0!, $1.shape) }, axis: axis)
        }
        return fromHost(y)
    }
}

extension Backend {
    public func roundedToBF16(_ x: Storage) -> Storage {
        x.precision == .bf16 ? x : fromHost(hostCopyRoundedToBF16(x))
    }
}

/// Runs `body` with host row-major pointers to `storages`, keeping the host copies alive meanwhile.
/// The first `roundedOperands` are read rounded to bf16 when `precision` is bf16 (the products'
/// operands; docs/model.md lists them).
func withHostOperands<R>(
    _ storages: [Storage?], roundedOperands: Int = 0, _ precision: Precision = .fp32,
    _ body: ([UnsafePointer<Float>?]) -> R
) -> R {
    let plainStorages = storages.enumerated().map { index, storage in
        index < roundedOperands && precision == .bf16 ? storage.map(hostCopyRoundedToBF16) : storage?.onHost()
    }
    return withExtendedLifetime(plainStorages) {
        body(plainStorages.map { $0.map { UnsafePointer($0.pointer) } })
    }
}

/// A host row-major copy of `storage` with every element rounded to bf16 (a `.bf16` storage),
/// written in one pass.
func hostCopyRoundedToBF16(_ storage: Storage) -> Storage {
    let rounded = Storage(uninitializedCount: storage.count, precision: .bf16)
    withHostOperands([storage]) { p in
        for index in 0..<storage.count { rounded.pointer[index] = BFloat16.round(p[0]![index]) }
    }
    return rounded
}

/// How the attention kernels read the operands they compute inside (P, dS) in `precision`.
func operandRounding(_ precision: Precision) -> (Float) -> Float {
    if precision == .bf16 { return { (x: Float) -> Float in BFloat16.round(x) } }
    return { (x: Float) -> Float in x }
}
