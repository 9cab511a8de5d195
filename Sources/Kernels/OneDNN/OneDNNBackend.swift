import CDNNL
import CKernels

/// The default backend: oneDNN primitives (JIT kernels for this CPU's vector units) for
/// convolutions, batch norm, pointwise ops, softmax, matrix products, pooling, broadcasting
/// arithmetic and reductions; the fused attention on sgemm and our column softmax. Pooling
/// gradients and data movement (permute, slice, concat, expand) are the inherited defaults.
///
/// Convolutions let oneDNN choose their blocked layouts and hand their outputs over in them (a
/// `DNNLLayout` on the storage); batch norm and pointwise ops run in dense blocked layouts and keep
/// them, so conv → BN → ReLU → conv chains never pass through row-major. Everything else reads
/// row-major copies made on demand.
public final class OneDNNBackend: Backend {
    public let id = BackendID.oneDNN
    let runtime: DNNLRuntime

    /// The default wherever its engine starts: faster than the reference on every CPU.
    static let preference = 100

    /// The process-wide instance, or nil when the oneDNN engine cannot be created.
    public static let shared: OneDNNBackend? = DNNLRuntime().map(OneDNNBackend.init)

    private init(runtime: DNNLRuntime) { self.runtime = runtime }

    /// Sets how many threads oneDNN's primitives use; false if the thread runtime is not found.
    @discardableResult
    public func setThreadCount(_ count: Int) -> Bool { DNNLRuntime.setThreadCount(count) }

    /// The threads oneDNN's primitives use.
    public var threadCount: Int? { DNNLRuntime.threadCount }

    /// The most capable instruction set oneDNN's JIT kernels use on this CPU, in oneDNN's names
    /// ("avx512_core", "avx512_core_bf16", "avx512_core_amx", …).
    public var instructionSet: String? { isa }

    private var isa: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case let other: return "isa 0x\(String(other.rawValue, radix: 16))"
        }
    }

    /// Whether oneDNN has native bf16 kernels here (AVX512_BF16 or AMX). Without them oneDNN 2.6
    /// emulates bf16 on AVX-512 and has no bf16 primitives at all below it.
    public var runsBF16Natively: Bool { isa.contains("bf16") || isa.contains("amx") }

    /// Without bf16 instructions oneDNN would emulate bf16, slower than fp32 runs.
    public var needsBF16Instructions: Bool { true }

    /// Primitives created so far (one per operation and shape).
    public var cachedPrimitiveCount: Int { runtime.cachedPrimitiveCount }

    /// The implementations oneDNN chose for the primitives created so far, with how many use each,
    /// by kind of primitive: ["convolution forward": ["jit_bf16:avx512_core_bf16": 12], …].
    public var kernelImplementations: [String: [String: Int]] {
        var result: [String: [String: Int]] = [:]
        for compiled in runtime.cachedPrimitives {
            // The name up to its shape: "convolution forward conv [2, 3, …" → "convolution forward".
            let shape = [" conv ", " pool ", " [", " ("].compactMap { compiled.what.firstRange(of: $0)?.lowerBound }
                .min()
            let kind = String(compiled.what[..<(shape ?? compiled.what.endIndex)])
            result[kind, default: [:]][compiled.implementation, default: 0] += 1
        }
        return result.merging(runtime.ownKernelShapes) { primitives, own in primitives.merging(own, uniquingKeysWith: +)
        }
    }

    func plain(_ storage: Storage) -> Storage { storage.onHost() }

    /// `storage` row-major, rounded to bf16 under bf16 (then a copy): what our Float32 kernels read
    /// to compute bf16 products exactly (see `sagan_round_bf16`).
    func operand(_ storage: Storage, _ precision: Precision) -> Storage {
        guard precision == .bf16 else { return plain(storage) }
        let copy = storage.ownedHostCopy()
        sagan_round_bf16(copy.pointer, storage.count)
        return copy
    }

    /// `storage` as a primitive can read it for `dims`: as it is when row-major or in a oneDNN
    /// layout that describes these dims (a convolution's output, maybe reshaped), otherwise a
    /// row-major copy.
    func usable(_ storage: Storage, _ dims: [Int]) -> Storage {
        guard let layout = storage.layout else { return storage.onHost() }
        return (layout as? DNNLLayout)?.descriptor(for: dims) != nil ? storage : storage.onHost()
    }

    /// A reorder into the same layout with bf16 elements: half the memory, rounded ties to even.
    public func roundedToBF16(_ x: Storage) -> Storage {
        if x.precision == .bf16 || x.count == 0 { return x }
        let from = x.layout as? DNNLLayout
        guard x.layout == nil || from != nil else { return roundedToBF16(x.onHost()) }
        let dims = from?.dims ?? [x.count]
        let source = from?.descriptor ?? MemoryDescriptor.plain(dims)
        let target = (from ?? DNNLLayout(source, dims: dims, runtime: runtime)).with(.bf16)
        let y = Storage(count: x.count, layout: target)
        runtime.convert(from: source, x.pointer, to: target.descriptor, y.pointer)
        return y
    }

    /// A convolution's result as an activation in `precision` (bf16 under bf16, as the primitives write it).
    private func activation(_ storage: Storage, _ precision: Precision) -> Storage {
        precision == .bf16 ? roundedToBF16(storage) : storage
    }

    // MARK: Convolution

    private func convolutionDescriptors(_ g: Conv2DGeometry) -> (strides: [Int64], padding: [Int64]) {
        ([Int64(g.stride), Int64(g.stride)], [Int64(g.paddingHeight), Int64(g.paddingWidth)])
    }

    func convolutionForwardPrimitive(_ g: Conv2DGeometry, bias: Bool) -> CompiledPrimitive {
        runtime.primitive(.convolutionForward(g, bias: bias)) {
            let operand = MemoryDescriptor.operandType(g.precision)
            var source = MemoryDescriptor.any(g.inputShape, operand)
            var weights = MemoryDescriptor.any(g.weightShape, operand)
            var biasDescriptor = MemoryDescriptor.plain([g.outChannels])
            var destination = MemoryDescriptor.any(g.outputShape, operand)
            let (strides, padding) = convolutionDescriptors(g)
            var operation = dnnl_convolution_desc_t()
            dnnlCheck(
                withUnsafePointer(to: &biasDescriptor) { biasPointer in
                    dnnl_convolution_forward_desc_init(
                        &operation, dnnl_forward_training, dnnl_convolution_direct, &source, &weights,
                        bias ? biasPointer : nil, &destination, strides, padding, padding)
                }, "convolution forward \(g)")
            return CompiledPrimitive("convolution forward \(g)", runtime: runtime, operation: &operation)
        }
    }

    /// The output stays in the layout the convolution chose (in bf16 under bf16: an activation);
    /// inputs in that layout are read as they are.
    public func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
        if usesDirectConvolution(g) {
            return activation(directConvolutionForward(g, input: input, weight: weight, bias: bias), g.precision)
        }
        let compiled = convolutionForwardPrimitive(g, bias: bias != nil)
        let x = usable(input, g.inputShape)
        let w = usable(weight, g.weightShape)
        let b = bias.map(plain)
        let y = runtime.storage(g.outputShape, layout: compiled.layout(of: DNNL_ARG_DST))
        var arguments = [
            PrimitiveArgument(DNNL_ARG_SRC, g.inputShape, x), PrimitiveArgument(DNNL_ARG_WEIGHTS, g.weightShape, w),
            PrimitiveArgument(DNNL_ARG_DST, g.outputShape, y),
        ]
        if let b { arguments.append(PrimitiveArgument(DNNL_ARG_BIAS, [g.outChannels], b)) }
        withExtendedLifetime((x, w, b)) { runtime.execute(compiled, arguments) }
        return y
    }

    public func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        if usesDirectConvolution(g) {
            return activation(
                directConvolutionBackwardData(g, outputGradient: outputGradient, weight: weight), g.precision)
        }
        if usesSubpixelBackwardData(g) {
            return activation(subpixelBackwardData(g, outputGradient: outputGradient, weight: weight), g.precision)
        }
        if usesPhaseBackwardData(g) { return phaseBackwardData(g, outputGradient: outputGradient, weight: weight) }
        let hint = convolutionForwardPrimitive(g, bias: false)
        let compiled = runtime.primitive(.convolutionBackwardData(g)) {
            let operand = MemoryDescriptor.operandType(g.precision)
            var sourceGradient = MemoryDescriptor.any(g.inputShape, operand)
            var weights = MemoryDescriptor.any(g.weightShape, operand)
            var destinationGradient = MemoryDescriptor.any(g.outputShape, operand)
            let (strides, padding) = convolutionDescriptors(g)
            var operation = dnnl_convolution_desc_t()
            dnnlCheck(
                dnnl_convolution_backward_data_desc_init(
                    &operation, dnnl_convolution_direct, &sourceGradient, &weights,
                    &destinationGradient, strides, padding, padding),
                "convolution backward data \(g)")
            return CompiledPrimitive(
                "convolution backward data \(g)", runtime: runtime, operation: &operation, hint: hint.descriptor)
        }
        let dy = usable(outputGradient, g.outputShape)
        let w = usable(weight, g.weightShape)
        let dx = runtime.storage(g.inputShape, layout: compiled.layout(of: DNNL_ARG_DIFF_SRC))
        withExtendedLifetime((dy, w)) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_DIFF_DST, g.outputShape, dy),
                    PrimitiveArgument(DNNL_ARG_WEIGHTS, g.weightShape, w),
                    PrimitiveArgument(DNNL_ARG_DIFF_SRC, g.inputShape, dx),
                ])
        }
        return dx
    }

    public func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    {
        if usesDirectConvolution(g) {
            return directConvolutionBackwardWeights(g, outputGradient: outputGradient, input: input, withBias: withBias)
        }
        if usesPatchProductWeightGradient(g) {
            return patchProductWeightGradient(g, outputGradient: outputGradient, input: input, withBias: withBias)
        }
        if usesBatchSplitWeightGradient(g),
            let split = batchSplitWeightGradient(g, outputGradient: outputGradient, input: input, withBias: withBias)
        {
            return split
        }
        let compiled = weightGradientPrimitive(g, bias: withBias)
        // Weight gradients go to the optimiser, which reads row-major.
        let dw = Storage(uninitializedCount: ShapeMath.count(g.weightShape))
        let db = withBias ? Storage(uninitializedCount: g.outChannels) : nil
        let x = usable(input, g.inputShape)
        let dy = usable(outputGradient, g.outputShape)
        var arguments = [
            PrimitiveArgument(DNNL_ARG_SRC, g.inputShape, x), PrimitiveArgument(DNNL_ARG_DIFF_DST, g.outputShape, dy),
            PrimitiveArgument(DNNL_ARG_DIFF_WEIGHTS, g.weightShape, dw),
        ]
        if let db { arguments.append(PrimitiveArgument(DNNL_ARG_DIFF_BIAS, [g.outChannels], db)) }
        withExtendedLifetime((x, dy)) { runtime.execute(compiled, arguments) }
        return (dw, db)
    }

    /// `singleThreaded`: for one thread, to run inside `forEachItemInParallel` (see `DNNLRuntime.withOneThread`).
    func weightGradientPrimitive(_ g: Conv2DGeometry, bias withBias: Bool, singleThreaded: Bool = false)
        -> CompiledPrimitive
    {
        let hint = convolutionForwardPrimitive(g, bias: withBias)
        return runtime.primitive(.convolutionBackwardWeights(g, bias: withBias, singleThreaded: singleThreaded)) {
            let operand = MemoryDescriptor.operandType(g.precision)
            var source = MemoryDescriptor.any(g.inputShape, operand)
            var weightsGradient = MemoryDescriptor.any(g.weightShape)
            var biasGradient = MemoryDescriptor.plain([g.outChannels])
            var destinationGradient = MemoryDescriptor.any(g.outputShape, operand)
            let (strides, padding) = convolutionDescriptors(g)
            var operation = dnnl_convolution_desc_t()
            dnnlCheck(
                withUnsafePointer(to: &biasGradient) { biasPointer in
                    dnnl_convolution_backward_weights_desc_init(
                        &operation, dnnl_convolution_direct, &source, &weightsGradient,
                        withBias ? biasPointer : nil, &destinationGradient, strides, padding, padding)
                }, "convolution backward weights \(g)")
            let create = {
                CompiledPrimitive(
                    "convolution backward weights \(g)", runtime: self.runtime, operation: &operation,
                    hint: hint.descriptor)
            }
            return singleThreaded ? DNNLRuntime.withOneThread(create) : create()
        }
    }

    // MARK: Batch normalisation

    private func batchNormFlags(scale: Bool, shift: Bool, global: Bool) -> UInt32 {
        var flags: UInt32 = 0
        if scale { flags |= dnnl_use_scale.rawValue }
        if shift { flags |= dnnl_use_shift.rawValue }
        if global { flags |= dnnl_use_global_stats.rawValue }
        return flags
    }

    /// Batch norm runs in its inputs' shared blocked layout when that is (N, C, H, W) for these
    /// statistics, else row-major (N, C, H·W, 1).
    private func batchNormData(_ g: BatchNormGeometry, _ storages: [Storage]) -> OperandLayout {
        OperandLayout(storages, rowMajorDims: [g.batch, g.channels, g.spatial, 1]) { dims in
            dims.count == 4 && dims[0] == g.batch && dims[1] == g.channels && dims[2] * dims[3] == g.spatial
        }
    }

    private func batchNormForwardPrimitive(
        _ g: BatchNormGeometry, _ data: OperandLayout, training: Bool, scale: Bool, shift: Bool
    )
        -> CompiledPrimitive
    {
        runtime.primitive(.batchNormForward(g, training: training, scale: scale, shift: shift, layout: data.key)) {
            var descriptor = data.descriptor
            var operation = dnnl_batch_normalization_desc_t()
            dnnlCheck(
                dnnl_batch_normalization_forward_desc_init(
                    &operation, training ? dnnl_forward_training : dnnl_forward_inference, &descriptor, g.epsilon,
                    batchNormFlags(scale: scale, shift: shift, global: !training)), "batch norm forward \(g)")
            return CompiledPrimitive("batch norm forward", runtime: runtime, operation: &operation)
        }
    }

    public func batchNormTraining(_ g: BatchNormGeometry, input: Storage, scale: Storage?, shift: Storage?)
        -> (output: Storage, mean: Storage, variance: Storage)
    {
        let data = batchNormData(g, [input])
        let compiled = batchNormForwardPrimitive(g, data, training: true, scale: scale != nil, shift: shift != nil)
        let x = data.fitted(input)
        let scaleData = scale.map(plain)
        let shiftData = shift.map(plain)
        let y = data.output(count: g.count)
        let mean = Storage(uninitializedCount: g.channels)
        let variance = Storage(uninitializedCount: g.channels)
        var arguments = [
            PrimitiveArgument(DNNL_ARG_SRC, data.dims, x), PrimitiveArgument(DNNL_ARG_DST, data.dims, y),
            PrimitiveArgument(DNNL_ARG_MEAN, [g.channels], mean),
            PrimitiveArgument(DNNL_ARG_VARIANCE, [g.channels], variance),
        ]
        if let scaleData { arguments.append(PrimitiveArgument(DNNL_ARG_SCALE, [g.channels], scaleData)) }
        if let shiftData { arguments.append(PrimitiveArgument(DNNL_ARG_SHIFT, [g.channels], shiftData)) }
        withExtendedLifetime((x, scaleData, shiftData)) { runtime.execute(compiled, arguments) }
        return (y, mean, variance)
    }

    public func batchNormInference(
        _ g: BatchNormGeometry, input: Storage, mean: Storage, variance: Storage, scale: Storage?, shift: Storage?
    ) -> Storage {
        let data = batchNormData(g, [input])
        let compiled = batchNormForwardPrimitive(g, data, training: false, scale: scale != nil, shift: shift != nil)
        let x = data.fitted(input)
        let meanData = plain(mean)
        let varianceData = plain(variance)
        let scaleData = scale.map(plain)
        let shiftData = shift.map(plain)
        let y = data.output(count: g.count)
        var arguments = [
            PrimitiveArgument(DNNL_ARG_SRC, data.dims, x), PrimitiveArgument(DNNL_ARG_DST, data.dims, y),
            PrimitiveArgument(DNNL_ARG_MEAN, [g.channels], meanData),
            PrimitiveArgument(DNNL_ARG_VARIANCE, [g.channels], varianceData),
        ]
        if let scaleData { arguments.append(PrimitiveArgument(DNNL_ARG_SCALE, [g.channels], scaleData)) }
        if let shiftData { arguments.append(PrimitiveArgument(DNNL_ARG_SHIFT, [g.channels], shiftData)) }
        withExtendedLifetime((x, meanData, varianceData, scaleData, shiftData)) { runtime.execute(compiled, arguments) }
        return y
    }

    public func batchNormBackward(
        _ g: BatchNormGeometry, input: Storage, outputGradient: Storage, mean: Storage, variance: Storage,
        scale: Storage?, withParameters: Bool
    ) -> (input: Storage, scale: Storage?, shift: Storage?) {
        // oneDNN 2.6 has no data-only backward with a scale, so a scaled layer always computes
        // dscale. When parameter gradients are wanted the shift is always computed too (its
        // gradient is Σ dy whether or not the forward used a shift).
        let useScale = scale != nil
        let useShift = withParameters
        let fullBackward = withParameters || useScale
        let data = batchNormData(g, [input, outputGradient])
        let hint = batchNormForwardPrimitive(g, data, training: true, scale: useScale, shift: useShift)
        let compiled = runtime.primitive(
            .batchNormBackward(g, scale: useScale, shift: useShift, parameters: withParameters, layout: data.key)
        ) {
            var descriptor = data.descriptor
            var gradient = data.descriptor
            var operation = dnnl_batch_normalization_desc_t()
            dnnlCheck(
                dnnl_batch_normalization_backward_desc_init(
                    &operation, fullBackward ? dnnl_backward : dnnl_backward_data, &gradient, &descriptor, g.epsilon,
                    batchNormFlags(scale: useScale, shift: useShift, global: false)), "batch norm backward \(g)")
            return CompiledPrimitive(
                "batch norm backward", runtime: runtime, operation: &operation, hint: hint.descriptor)
        }
        let x = data.fitted(input)
        let dy = data.fitted(outputGradient)
        let meanData = plain(mean)
        let varianceData = plain(variance)
        let scaleData = scale.map(plain)
        let dx = data.output(count: g.count)
        let dScale = useScale ? Storage(uninitializedCount: g.channels) : nil
        let dShift = withParameters ? Storage(uninitializedCount: g.channels) : nil
        var arguments = [
            PrimitiveArgument(DNNL_ARG_SRC, data.dims, x), PrimitiveArgument(DNNL_ARG_DIFF_DST, data.dims, dy),
            PrimitiveArgument(DNNL_ARG_MEAN, [g.channels], meanData),
            PrimitiveArgument(DNNL_ARG_VARIANCE, [g.channels], varianceData),
            PrimitiveArgument(DNNL_ARG_DIFF_SRC, data.dims, dx),
        ]
        if let scaleData { arguments.append(PrimitiveArgument(DNNL_ARG_SCALE, [g.channels], scaleData)) }
        // oneDNN asks for the shift as an input whenever the flags name it, though its value never matters.
        let unusedShift = useShift ? Storage(zeros: g.channels) : nil
        if let unusedShift { arguments.append(PrimitiveArgument(DNNL_ARG_SHIFT, [g.channels], unusedShift)) }
        if let dScale { arguments.append(PrimitiveArgument(DNNL_ARG_DIFF_SCALE, [g.channels], dScale)) }
        if let dShift { arguments.append(PrimitiveArgument(DNNL_ARG_DIFF_SHIFT, [g.channels], dShift)) }
        withExtendedLifetime((x, dy, meanData, varianceData, scaleData, unusedShift)) {
            runtime.execute(compiled, arguments)
        }
        return (dx, withParameters ? dScale : nil, dShift)
    }

    // MARK: Pointwise

    private func eltwiseAlgorithm(_ op: UnaryOperation) -> (dnnl_alg_kind_t, alpha: Float, beta: Float) {
        switch op {
        case .relu: return (dnnl_eltwise_relu, 0, 0)
        case .leakyRelu(let slope): return (dnnl_eltwise_relu, slope, 0)
        case .tanh: return (dnnl_eltwise_tanh, 0, 0)
        case .sqrt: return (dnnl_eltwise_sqrt, 0, 0)
        case .exp: return (dnnl_eltwise_exp, 0, 0)
        case .log: return (dnnl_eltwise_log, 0, 0)
        case .square: return (dnnl_eltwise_square, 0, 0)
        case .abs: return (dnnl_eltwise_abs, 0, 0)
        case .affine(let scale, let shift): return (dnnl_eltwise_linear, scale, shift)
        }
    }

    /// scale · x + shift without a primitive: oneDNN bakes the constants into the primitive, and
    /// an optimiser's step-dependent constants (Adam's bias corrections) would create new ones at
    /// every step, growing the cache without bound.
    private func affine(_ x: Storage, scale: Float, shift: Float) -> Storage {
        let input = plain(x)
        let y = Storage(uninitializedCount: x.count)
        let chunk = 1 << 16
        withExtendedLifetime(input) {
            runtime.forEachItemInParallel((x.count + chunk - 1) / chunk) { item, _, _ in
                let range = item * chunk..<min(x.count, (item + 1) * chunk)
                let source = input.pointer
                let destination = y.pointer
                for index in range { destination[index] = scale * source[index] + shift }
            }
        }
        return y
    }

    private func eltwiseForwardPrimitive(_ op: UnaryOperation, _ data: OperandLayout, count: Int) -> CompiledPrimitive {
        runtime.primitive(.eltwiseForward(op, count: count, layout: data.key)) {
            let (algorithm, alpha, beta) = eltwiseAlgorithm(op)
            var descriptor = data.descriptor
            var operation = dnnl_eltwise_desc_t()
            dnnlCheck(
                dnnl_eltwise_forward_desc_init(&operation, dnnl_forward_training, algorithm, &descriptor, alpha, beta),
                "eltwise \(op) forward")
            return CompiledPrimitive("eltwise forward", runtime: runtime, operation: &operation)
        }
    }

    public func unary(_ op: UnaryOperation, _ x: Storage) -> Storage {
        guard x.count > 0 else { return Storage(uninitializedCount: 0) }
        if case .affine(let scale, let shift) = op { return affine(x, scale: scale, shift: shift) }
        let data = OperandLayout([x], rowMajorDims: [x.count])
        let compiled = eltwiseForwardPrimitive(op, data, count: x.count)
        let input = data.fitted(x)
        let y = data.output(count: x.count)
        withExtendedLifetime(input) {
            runtime.execute(
                compiled,
                [PrimitiveArgument(DNNL_ARG_SRC, data.dims, input), PrimitiveArgument(DNNL_ARG_DST, data.dims, y)])
        }
        return y
    }

    public func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    {
        let count = input.count
        guard count > 0 else { return Storage(uninitializedCount: 0) }
        if case .affine(let scale, _) = op { return affine(outputGradient, scale: scale, shift: 0) }
        let data = OperandLayout([input, outputGradient], rowMajorDims: [count])
        let hint = eltwiseForwardPrimitive(op, data, count: count)
        let compiled = runtime.primitive(.eltwiseBackward(op, count: count, layout: data.key)) {
            let (algorithm, alpha, beta) = eltwiseAlgorithm(op)
            var descriptor = data.descriptor
            var gradient = data.descriptor
            var operation = dnnl_eltwise_desc_t()
            dnnlCheck(
                dnnl_eltwise_backward_desc_init(&operation, algorithm, &gradient, &descriptor, alpha, beta),
                "eltwise \(op) backward")
            return CompiledPrimitive("eltwise backward", runtime: runtime, operation: &operation, hint: hint.descriptor)
        }
        let x = data.fitted(input)
        let dy = data.fitted(outputGradient)
        let dx = data.output(count: count)
        withExtendedLifetime((x, dy)) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_SRC, data.dims, x), PrimitiveArgument(DNNL_ARG_DIFF_DST, data.dims, dy),
                    PrimitiveArgument(DNNL_ARG_DIFF_SRC, data.dims, dx),
                ])
        }
        return dx
    }

    public func binary(
        _ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int]
    ) -> Storage {
        let count = ShapeMath.count(outputShape)
        guard count > 0 else { return Storage(uninitializedCount: 0) }
        // oneDNN broadcasts only its second operand: swap commutative operands or expand the first.
        if aShape != outputShape {
            if bShape == outputShape && (op == .add || op == .multiply) {
                return binary(op, b, bShape, a, aShape, outputShape: outputShape)
            }
            return binary(
                op, expand(a, shape: aShape, outputShape: outputShape), outputShape, b, bShape,
                outputShape: outputShape)
        }
        var dims = outputShape.isEmpty ? [1] : outputShape
        var bDims = bShape.isEmpty ? [1] : bShape
        // Elementwise with a scalar or an identically laid-out operand, the order of the elements
        // does not matter: a dense oneDNN layout (a convolution's output) runs as a flat array and
        // the result keeps it, so residual adds and γ·o do not leave the blocked layout.
        // A per-channel operand (a transposed convolution's bias) broadcasts over the layout as it is.
        var layout: DNNLLayout?
        var perChannel = false
        if let aLayout = (a.layout as? DNNLLayout)?.reshaped(to: dims), aLayout.isDense {
            let scalar = bDims.allSatisfy { $0 == 1 }
            if scalar || (b.layout as? DNNLLayout)?.descriptor(for: dims).map({ aLayout.describes($0) }) == true {
                (layout, dims, bDims) = (aLayout, [count], scalar ? [1] : [count])
            } else if dims.count == 4 && bDims == [1, dims[1], 1, 1] {
                (layout, perChannel) = (aLayout, true)
            }
        }
        // A bf16 layout's elements are bf16 (the other operand then is too, or a Float32 scalar or
        // per-channel operand), and so is the result.
        let type = layout?.precision == .bf16 ? dnnl_bf16 : dnnl_f32
        let bType = bDims == [1] || perChannel ? dnnl_f32 : type
        let descriptors = (
            perChannel ? layout!.descriptor : MemoryDescriptor.strided(dims, ShapeMath.strides(dims), type),
            MemoryDescriptor.strided(bDims, ShapeMath.strides(bDims), bType)
        )
        let compiled = runtime.primitive(.binary(op, a: dims, b: bDims, layout: layout?.key)) {
            var (source0, source1) = descriptors
            var destination = descriptors.0
            let algorithm: dnnl_alg_kind_t
            switch op {
            case .add: algorithm = dnnl_binary_add
            case .subtract: algorithm = dnnl_binary_sub
            case .multiply: algorithm = dnnl_binary_mul
            case .divide: algorithm = dnnl_binary_div
            }
            var operation = dnnl_binary_desc_t()
            dnnlCheck(
                dnnl_binary_desc_init(&operation, algorithm, &source0, &source1, &destination),
                "binary \(op) \(dims) \(bDims)")
            return CompiledPrimitive("binary", runtime: runtime, operation: &operation)
        }
        let left = layout == nil ? plain(a) : a
        let right = layout == nil || bDims == [1] || perChannel ? plain(b) : b
        let y = layout.map { Storage(count: count, layout: $0) } ?? Storage(uninitializedCount: count)
        withExtendedLifetime((left, right)) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_SRC_0, dims, left.pointer, layout: descriptors.0),
                    PrimitiveArgument(DNNL_ARG_SRC_1, bDims, right.pointer, layout: descriptors.1),
                    PrimitiveArgument(DNNL_ARG_DST, dims, y.pointer, layout: descriptors.0),
                ])
        }
        return y
    }

    // MARK: Reductions, softmax, products

    public func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        guard shape != outputShape, x.count > 0 else {
            return BackendRegistry.reference.reduce(op, x, shape: shape, outputShape: outputShape)
        }
        if shape.count > 1, outputShape.first == 1, outputShape.dropFirst() == shape.dropFirst() {
            return reduceRows(op, plain(x), rows: shape[0])
        }
        // Reducing every axis does not depend on the order of the elements: a dense layout is read as
        // it is, in bf16 too (blog128's dγ sums, 12 per step: no bf16 → Float32 reorder before each).
        let layout = x.layout as? DNNLLayout
        let everything = outputShape.allSatisfy { $0 == 1 } && layout?.isDense == true
        let bf16Source = everything && x.precision == .bf16
        let sourceDescriptor = MemoryDescriptor.strided(
            shape, ShapeMath.strides(shape), bf16Source ? dnnl_bf16 : dnnl_f32)
        let compiled = runtime.primitive(.reduction(op, shape: shape, output: outputShape, bf16Source: bf16Source)) {
            var source = sourceDescriptor
            var destination = MemoryDescriptor.plain(outputShape)
            let algorithm: dnnl_alg_kind_t
            switch op {
            case .sum: algorithm = dnnl_reduction_sum
            case .mean: algorithm = dnnl_reduction_mean
            case .max: algorithm = dnnl_reduction_max
            }
            var operation = dnnl_reduction_desc_t()
            dnnlCheck(
                dnnl_reduction_desc_init(&operation, algorithm, &source, &destination, 0, 0),
                "reduction \(op) \(shape)→\(outputShape)")
            return CompiledPrimitive("reduction", runtime: runtime, operation: &operation)
        }
        let input = everything ? x : plain(x)
        let y = Storage(uninitializedCount: ShapeMath.count(outputShape))
        withExtendedLifetime(input) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_SRC, shape, input.pointer, layout: sourceDescriptor),
                    PrimitiveArgument(DNNL_ARG_DST, outputShape, y.pointer),
                ])
        }
        return y
    }

    /// Over the first axis only (a bias gradient over the batch), where oneDNN 2.6 has only its
    /// reference reduction (16x8192 → 8192: 0.24 ms): rows combined in order, one vectorised pass each.
    private func reduceRows(_ op: ReductionOperation, _ x: Storage, rows: Int) -> Storage {
        let columns = x.count / rows
        let y = Storage(uninitializedCount: columns)
        withExtendedLifetime(x) {
            let (source, result) = (x.pointer, y.pointer)
            result.update(from: source, count: columns)
            for row in 1..<max(rows, 1) {
                let next = source + row * columns
                for j in 0..<columns { result[j] = op == .max ? Swift.max(result[j], next[j]) : result[j] + next[j] }
            }
            if op == .mean { for j in 0..<columns { result[j] /= Float(rows) } }
        }
        return y
    }

    func softmaxForwardPrimitive(rows: Int, columns: Int) -> CompiledPrimitive {
        runtime.primitive(.softmaxForward(rows: rows, columns: columns)) {
            var data = MemoryDescriptor.plain([rows, columns])
            var operation = dnnl_softmax_desc_t()
            dnnlCheck(
                dnnl_softmax_forward_desc_init(&operation, dnnl_forward_training, &data, 1),
                "softmax forward (\(rows), \(columns))")
            return CompiledPrimitive("softmax forward", runtime: runtime, operation: &operation)
        }
    }

    public func softmax(_ x: Storage, rows: Int, columns: Int) -> Storage {
        let compiled = softmaxForwardPrimitive(rows: rows, columns: columns)
        let input = plain(x)
        let y = Storage(uninitializedCount: rows * columns)
        withExtendedLifetime(input) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_SRC, [rows, columns], input.pointer),
                    PrimitiveArgument(DNNL_ARG_DST, [rows, columns], y.pointer),
                ])
        }
        return y
    }

    public func softmaxBackward(output: Storage, outputGradient: Storage, rows: Int, columns: Int) -> Storage {
        let compiled = softmaxBackwardPrimitive(rows: rows, columns: columns)
        let y = plain(output)
        let dy = plain(outputGradient)
        let dx = Storage(uninitializedCount: rows * columns)
        withExtendedLifetime((y, dy)) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_DST, [rows, columns], y.pointer),
                    PrimitiveArgument(DNNL_ARG_DIFF_DST, [rows, columns], dy.pointer),
                    PrimitiveArgument(DNNL_ARG_DIFF_SRC, [rows, columns], dx.pointer),
                ])
        }
        return dx
    }

    func softmaxBackwardPrimitive(rows: Int, columns: Int) -> CompiledPrimitive {
        let hint = softmaxForwardPrimitive(rows: rows, columns: columns)
        return runtime.primitive(.softmaxBackward(rows: rows, columns: columns)) {
            var data = MemoryDescriptor.plain([rows, columns])
            var gradient = MemoryDescriptor.plain([rows, columns])
            var operation = dnnl_softmax_desc_t()
            dnnlCheck(
                dnnl_softmax_backward_desc_init(&operation, &gradient, &data, 1),
                "softmax backward (\(rows), \(columns))")
            return CompiledPrimitive("softmax backward", runtime: runtime, operation: &operation, hint: hint.descriptor)
        }
    }

    public func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage {
        let left = plain(a)
        let right = plain(b)
        if g.batch == 1 && g.precision == .fp32 {
            // One product (spectral norm's matrix-vector steps, most of them): sgemm directly, without
            // the primitive's per-call memory objects, which cost more than these small products.
            let c = Storage(uninitializedCount: g.m * g.n)
            withExtendedLifetime((left, right)) {
                runtime.executionLock.withLock { _ in
                    dnnlCheck(
                        dnnl_sgemm(
                            CChar(UInt8(ascii: g.transposeA ? "T" : "N")),
                            CChar(UInt8(ascii: g.transposeB ? "T" : "N")),
                            Int64(g.m), Int64(g.n), Int64(g.k), 1, left.pointer, Int64(g.transposeA ? g.m : g.k),
                            right.pointer, Int64(g.transposeB ? g.k : g.n), 0, c.pointer, Int64(g.n)), "sgemm \(g)")
                }
            }
            return c
        }
        let operands = MatmulOperands(g)
        let compiled = matmulPrimitive(g)
        let c = Storage(uninitializedCount: ShapeMath.count(operands.c))
        withExtendedLifetime((left, right)) {
            // Under bf16 the primitive reads these Float32 operands converted (the execution makes
            // bf16 copies with the same strides).
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_SRC, operands.a, left.pointer, layout: operands.aLayout()),
                    PrimitiveArgument(DNNL_ARG_WEIGHTS, operands.b, right.pointer, layout: operands.bLayout()),
                    PrimitiveArgument(DNNL_ARG_DST, operands.c, c.pointer),
                ])
        }
        return c
    }

    /// The matmul primitive of `g`: operands in `g.precision` with `MatmulOperands`' strides, a
    /// row-major Float32 result.
    func matmulPrimitive(_ g: MatmulGeometry) -> CompiledPrimitive {
        runtime.primitive(.matmul(g)) {
            let operands = MatmulOperands(g)
            let operand = MemoryDescriptor.operandType(g.precision)
            var source = operands.aLayout(operand)
            var weights = operands.bLayout(operand)
            var destination = MemoryDescriptor.plain(operands.c)
            var operation = dnnl_matmul_desc_t()
            dnnlCheck(dnnl_matmul_desc_init(&operation, &source, &weights, nil, &destination), "matmul \(g)")
            return CompiledPrimitive("matmul", runtime: runtime, operation: &operation)
        }
    }

    // MARK: Optimisers (one pass over each parameter, in chunks over the threads)

    public func adamUpdate(_ step: AdamStep, parameter: Storage, gradient: Storage, first: Storage?, second: Storage?)
        -> (parameter: Storage, first: Storage, second: Storage)
    {
        let count = parameter.count
        let (p, m, v) = (
            Storage(uninitializedCount: count), Storage(uninitializedCount: count), Storage(uninitializedCount: count)
        )
        let inputs = (plain(parameter), plain(gradient), first.map(plain), second.map(plain))
        var constants = sagan_adam_step(
            learningRate: step.learningRate, beta1: step.beta1, beta2: step.beta2, epsilon: step.epsilon,
            correction1: step.correction1, correction2: step.correction2)
        let chunk = 1 << 16
        withExtendedLifetime(inputs) {
            runtime.forEachItemInParallel((count + chunk - 1) / chunk) { item, _, _ in
                let start = item * chunk
                sagan_adam_update(
                    &constants, min(chunk, count - start), inputs.0.pointer + start, inputs.1.pointer + start,
                    inputs.2.map { $0.pointer + start }, inputs.3.map { $0.pointer + start },
                    p.pointer + start, m.pointer + start, v.pointer + start)
            }
        }
        return (p, m, v)
    }

    // MARK: Pooling (forward on oneDNN; the backward, which only SAGAN's BigGAN attention needs, is the default)

    /// Pools in the input's dense blocked layout when it has one (a convolution's output), writing
    /// the output in the same layout: no reorder on either side, and oneDNN's blocked pooling kernels.
    public func pool2d(_ op: PoolOperation, _ g: Pool2DGeometry, _ x: Storage) -> Storage {
        let data = OperandLayout([x], rowMajorDims: g.inputShape, bf16: false) { $0 == g.inputShape }
        let compiled = runtime.primitive(.pooling(op, g, layout: data.key)) {
            var source = data.descriptor
            var destination = MemoryDescriptor.any(g.outputShape)
            let window = [Int64(g.window), Int64(g.window)]
            let stride = [Int64(g.stride), Int64(g.stride)]
            let padding = [Int64(g.padding), Int64(g.padding)]
            let dilation: [Int64] = [0, 0]
            var operation = dnnl_pooling_v2_desc_t()
            // Inference: a max pool's training form would also write the argmax workspace.
            dnnlCheck(
                dnnl_pooling_v2_forward_desc_init(
                    &operation, dnnl_forward_inference,
                    op == .max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding,
                    &source, &destination, stride, window, dilation, padding, padding),
                "pooling \(g)")
            return CompiledPrimitive("pooling \(g)", runtime: runtime, operation: &operation)
        }
        let input = data.fitted(x)
        let y = runtime.storage(g.outputShape, layout: compiled.layout(of: DNNL_ARG_DST))
        withExtendedLifetime(input) {
            runtime.execute(
                compiled,
                [
                    PrimitiveArgument(DNNL_ARG_SRC, g.inputShape, input),
                    PrimitiveArgument(DNNL_ARG_DST, g.outputShape, y),
                ])
        }
        return y
    }
}

/// A matmul's operand dims (batch, rows, columns); transposed operands are described by strides
/// over their stored row-major layout.
struct MatmulOperands {
    let a: [Int], b: [Int], c: [Int]
    private let aStrides: [Int], bStrides: [Int]

    init(_ g: MatmulGeometry) {
        (a, b, c) = ([g.batchA, g.m, g.k], [g.batchB, g.k, g.n], [g.batch, g.m, g.n])
        aStrides = g.transposeA ? [g.m * g.k, 1, g.m] : [g.m * g.k, g.k, 1]
        bStrides = g.transposeB ? [g.k * g.n, 1, g.k] : [g.k * g.n, g.n, 1]
    }

    func aLayout(_ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
        MemoryDescriptor.strided(a, aStrides, type)
    }

    func bLayout(_ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
        MemoryDescriptor.strided(b, bStrides, type)
    }
}
