import CDNNL
import CKernels

/// A bf16 convolution's weight gradient as one matrix product, dW (O, C·Kh·Kw) = dy (O, B·P) ·
/// patches (B·P, C·Kh·Kw), where each of the P output positions of each image contributes the row
/// of input values its window reads. oneDNN 2.6's direct backward-weights kernel runs far below the
/// bf16 peak on outputs of a few positions: blog128's 256 → 512 layer (8x8 → 4x4) at about 200
/// GFLOP/s on a Zen 4, where its matmul of the same product runs at 370–410 and the whole path
/// (reorders, patches, product) takes 3.3 ms a call against 5.3–5.6. The patches copy the input once
/// per kernel row, which outweighs the gain from 8x8 outputs up (the 128 → 256 layer: 3.7 ms against
/// 3.3 on oneDNN).
extension OneDNNBackend {
    /// bf16 with native bf16 instructions, outputs of at most 16 positions, kernels larger than 1x1.
    func usesPatchProductWeightGradient(_ g: Conv2DGeometry) -> Bool {
        usesBF16Kernels(g) && g.outHeight * g.outWidth <= 16 && g.kernelHeight * g.kernelWidth > 1
    }

    /// dW row-major (O, C, Kh, Kw) and db, Float32, from operands read as bf16 (rounded to nearest
    /// even where they are not bf16 yet, as the reference backend rounds them).
    func patchProductWeightGradient(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    {
        let positions = g.outHeight * g.outWidth
        let depth = g.batch * positions
        let taps = g.inChannels * g.kernelHeight * g.kernelWidth
        // dy as (O, B·P): each output channel's gradients over the batch, one row.
        let dyRows = bf16Matrix(depth * g.outChannels)
        let dy = usable(outputGradient, g.outputShape)
        runtime.convert(
            from: MemoryDescriptor.of(dy, as: g.outputShape), dy.pointer,
            to: MemoryDescriptor.strided(g.outputShape, [positions, depth, g.outWidth, 1], dnnl_bf16), dyRows.pointer)
        // x planar in bf16 with its padding as zeros around each channel, then each image's patch rows.
        let (paddedHeight, paddedWidth) = (g.inHeight + 2 * g.paddingHeight, g.inWidth + 2 * g.paddingWidth)
        let paddedImage = g.inChannels * paddedHeight * paddedWidth
        let padded = Storage(zeros: (g.batch * paddedImage + 1) / 2)
        var interior = MemoryDescriptor.strided(
            g.inputShape, [paddedImage, paddedHeight * paddedWidth, paddedWidth, 1], dnnl_bf16)
        interior.offset0 = Int64(g.paddingHeight * paddedWidth + g.paddingWidth)
        let x = usable(input, g.inputShape)
        runtime.convert(from: MemoryDescriptor.of(x, as: g.inputShape), x.pointer, to: interior, padded.pointer)
        let patches = bf16Matrix(depth * taps)
        runtime.forEachItemInParallel(g.batch) { n, _, _ in
            sagan_patch_rows_bf16(
                bf16Halves(padded.pointer) + n * paddedImage, g.inChannels, paddedHeight, paddedWidth,
                g.kernelHeight, g.kernelWidth, g.stride, g.outHeight, g.outWidth,
                bf16Halves(patches.pointer) + n * positions * taps, taps)
        }
        var product = try! MatmulGeometry(batchA: 1, batchB: 1, m: g.outChannels, n: taps, k: depth)
        product.precision = .bf16
        let operands = MatmulOperands(product)
        let dw = Storage(uninitializedCount: ShapeMath.count(g.weightShape))
        runtime.execute(
            matmulPrimitive(product),
            [
                PrimitiveArgument(DNNL_ARG_SRC, operands.a, dyRows.pointer, layout: operands.aLayout(dnnl_bf16)),
                PrimitiveArgument(DNNL_ARG_WEIGHTS, operands.b, patches.pointer, layout: operands.bLayout(dnnl_bf16)),
                PrimitiveArgument(DNNL_ARG_DST, operands.c, dw.pointer),
            ])
        let db = withBias ? Storage(uninitializedCount: g.outChannels) : nil
        if let db { sagan_bf16_row_sums(bf16Halves(dyRows.pointer), g.outChannels, depth, db.pointer) }
        return (dw, db)
    }

    /// Room for `count` bf16 elements.
    private func bf16Matrix(_ count: Int) -> Storage { Storage(uninitializedCount: (count + 1) / 2) }
}
