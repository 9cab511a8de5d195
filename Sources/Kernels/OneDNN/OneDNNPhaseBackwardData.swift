import CDNNL
import CKernels

/// The input gradient of a bf16 4x4 stride-2 convolution with at most 16 output positions (blog128's
/// 256 → 512 layer, 8x8 → 4x4) as four stride-1 2x2 forward convolutions of dy, one per parity of
/// dx's rows and columns (the decomposition OneDNNSubpixelConvolution.swift describes), interleaved
/// into dx. oneDNN 2.6's bf16 backward-data kernel runs that shape at about 60% of the bf16 peak and
/// its forward kernel the phases at the peak: on a Zen 4, batch 16, 2.54 ms against 1.76 for the four
/// on 2 threads, 5.26 against 3.53 on one. The phase kernels come from W/σ in oneDNN's bf16 forward
/// layout by moving its 16x16 squares; dx leaves in 16-channel blocks.
extension OneDNNBackend {
    /// bf16 with native bf16 instructions; channel counts our weight transposes move; at most 16 output
    /// positions, since the larger layers' backward data runs near the peak already (phases 0.99–1.05x).
    func usesPhaseBackwardData(_ g: Conv2DGeometry) -> Bool {
        usesBF16Kernels(g) && g.stride == 2 && g.kernelHeight == 4 && g.kernelWidth == 4 && g.paddingHeight == 1
            && g.paddingWidth == 1 && g.inHeight == 2 * g.outHeight && g.inWidth == 2 * g.outWidth
            && g.outHeight * g.outWidth <= 16 && WeightBlocks.handles(g.weightShape)
    }

    /// dx (B, C, H, W) as a bf16 activation in 16-channel blocks.
    func phaseBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        let (kernelDims, phaseDims) = Self.phaseShapes(g)
        // W/σ in the bf16 forward layout (as spectral norm writes it; anything else is reordered there).
        var w = usable(weight, g.weightShape)
        let weightLayout = MemoryDescriptor.of(w, as: g.weightShape)
        if WeightBlocks.layout(weightLayout, g.weightShape) != .outputFastestBF16 {
            let converted = Storage(uninitializedCount: ShapeMath.count(g.weightShape) / 2)
            runtime.convert(
                from: weightLayout, w.pointer, to: WeightBlocks.blockedDescriptor(g.weightShape, .outputFastestBF16),
                converted.pointer)
            w = converted
        }
        // The four phase kernels (C, O, 2, 2), bf16 in the same layout: pairs of O, 16 C, then the taps.
        let kernelWords = ShapeMath.count(kernelDims) / 2
        let kernels = Storage(uninitializedCount: 4 * kernelWords)
        let inputBlocks = g.inChannels / 16
        withExtendedLifetime(w) {
            runtime.forEachItemInParallel(4 * inputBlocks) { item, _, _ in
                let (phase, block) = (item / inputBlocks, item % inputBlocks)
                sagan_phase_weights_bf16(
                    bf16Pairs(w.pointer), g.outChannels, g.inChannels, Int32(phase / 2), Int32(phase % 2),
                    bf16Pairs(kernels.pointer) + phase * kernelWords, block, block + 1)
            }
        }
        let kernelLayout = WeightBlocks.blockedDescriptor(kernelDims, .outputFastestBF16)
        let phaseLayout = MemoryDescriptor.tagged(phaseDims, dnnl_bf16, dnnl_aBcd16b)
        let phaseWords = ShapeMath.count(phaseDims) / 2
        let phases = Storage(uninitializedCount: 4 * phaseWords)
        // dy once in the layout the phases read (a linear layer's gradient comes row-major).
        var dy = usable(outputGradient, g.outputShape)
        var given = MemoryDescriptor.of(dy, as: g.outputShape)
        if var wanted = phasePrimitive(g, phase: 0).layout(of: DNNL_ARG_SRC),
            dnnl_memory_desc_equal(&given, &wanted) == 0
        {
            let reordered = runtime.storage(g.outputShape, layout: wanted)
            runtime.convert(from: given, dy.pointer, to: wanted, reordered.pointer)
            dy = reordered
        }
        withExtendedLifetime((dy, kernels)) {
            for phase in 0..<4 {
                runtime.execute(
                    phasePrimitive(g, phase: phase),
                    [
                        PrimitiveArgument(DNNL_ARG_SRC, g.outputShape, dy),
                        PrimitiveArgument(
                            DNNL_ARG_WEIGHTS, kernelDims, kernels.pointer + phase * kernelWords, layout: kernelLayout),
                        PrimitiveArgument(
                            DNNL_ARG_DST, phaseDims, phases.pointer + phase * phaseWords, layout: phaseLayout),
                    ])
            }
        }
        let dx = Storage(
            count: ShapeMath.count(g.inputShape),
            layout: runtime.layout(g.inputShape, MemoryDescriptor.tagged(g.inputShape, dnnl_bf16, dnnl_aBcd16b))!)
        let planes = g.batch * g.inChannels / 16
        withExtendedLifetime(phases) {
            runtime.forEachItemInParallel(4) { phase, _, _ in
                sagan_interleave_phase_blocked16_bf16(
                    bf16Halves(phases.pointer + phase * phaseWords), planes, g.outHeight, g.outWidth, Int32(phase / 2),
                    Int32(phase % 2), bf16Halves(dx.pointer))
            }
        }
        return dx
    }

    /// Phase (py, px) = (phase / 2, phase % 2): dy (B, O, Ho, Wo) correlated with a 2x2 kernel (C, O, 2,
    /// 2), dy padded by 1 − py rows above and py below, 1 − px columns on the left and px on the right.
    private func phasePrimitive(_ g: Conv2DGeometry, phase: Int) -> CompiledPrimitive {
        runtime.primitive(.convolutionPhase(g, phase: phase)) {
            let (kernelDims, phaseDims) = Self.phaseShapes(g)
            var source = MemoryDescriptor.any(g.outputShape, dnnl_bf16)
            var weights = MemoryDescriptor.any(kernelDims, dnnl_bf16)
            var destination = MemoryDescriptor.any(phaseDims, dnnl_bf16)
            let (py, px) = (Int64(phase / 2), Int64(phase % 2))
            var operation = dnnl_convolution_desc_t()
            dnnlCheck(
                dnnl_convolution_forward_desc_init(
                    &operation, dnnl_forward_training, dnnl_convolution_direct, &source, &weights, nil, &destination,
                    [1, 1], [1 - py, 1 - px], [py, px]),
                "convolution backward data phase \(phase) \(g)")
            return CompiledPrimitive(
                "convolution backward data phase \(phase) \(g)", runtime: runtime, operation: &operation)
        }
    }

    /// A phase's kernel (C, O, 2, 2) and output (B, C, Ho, Wo).
    private static func phaseShapes(_ g: Conv2DGeometry) -> (kernel: [Int], phase: [Int]) {
        ([g.inChannels, g.outChannels, 2, 2], [g.batch, g.inChannels, g.outHeight, g.outWidth])
    }
}
