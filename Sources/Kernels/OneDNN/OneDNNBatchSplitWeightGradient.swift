import CDNNL

/// A bf16 convolution's weight gradient with the batch split over the threads: each runs oneDNN's
/// kernel on its share of the images, single-threaded, and the shares' gradients are summed.
/// oneDNN 2.6's `jit_bf16` backward-weights kernel gains only 1.35–1.57x from a second thread on
/// blog128's layers with 16x16 to 64x64 outputs at batch 16 (on a Zen 4, where its Float32 kernel
/// gains 1.87x and the bf16 forward 1.93x); one call per thread on its own images scales as the
/// one-thread kernel does, once a share holds enough output positions.
extension OneDNNBackend {
    /// bf16 on native bf16 instructions, several threads sharing the batch evenly, and at least 2048
    /// output positions (over its images) in each share. Measured on a Zen 4 for the 128 → 256 layer
    /// (8x8 outputs): 512 a share at batch 16, 7% slower than oneDNN's own threads; 2048 at batch 64,
    /// 18% faster. The other layers split at batch 16 have 2048 and more.
    func usesBatchSplitWeightGradient(_ g: Conv2DGeometry) -> Bool {
        let threads = threadCount ?? 1
        return usesBF16Kernels(g) && threads > 1 && g.batch % threads == 0
            && g.batch / threads * g.outHeight * g.outWidth >= 2048
    }

    /// dW row-major (O, C, Kh, Kw) and db, Float32; nil when an operand's layout cannot be split by images.
    func batchSplitWeightGradient(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)?
    {
        let shares = threadCount ?? 1
        var share = g
        share.batch = g.batch / shares
        let x = usable(input, g.inputShape)
        let dy = usable(outputGradient, g.outputShape)
        guard let xShares = ImageShares(x, g.inputShape, count: shares),
            let dyShares = ImageShares(dy, g.outputShape, count: shares)
        else { return nil }
        let compiled = weightGradientPrimitive(share, bias: withBias, singleThreaded: true)
        // Each share's gradient in the layout the primitive writes, summed there, reordered once.
        let weightLayout = compiled.layout(of: DNNL_ARG_DIFF_WEIGHTS) ?? MemoryDescriptor.plain(g.weightShape)
        var sizing = weightLayout
        let weightFloats = (dnnl_memory_desc_get_size(&sizing) + 3) / 4
        let partials = Storage(uninitializedCount: shares * (weightFloats + g.outChannels))
        withExtendedLifetime((x, dy)) {
            runtime.forEachItemInParallel(shares) { index, _, stream in
                let weights = partials.pointer + index * (weightFloats + g.outChannels)
                var arguments = [
                    xShares.argument(DNNL_ARG_SRC, share.inputShape, index),
                    dyShares.argument(DNNL_ARG_DIFF_DST, share.outputShape, index),
                    PrimitiveArgument(DNNL_ARG_DIFF_WEIGHTS, g.weightShape, weights, layout: weightLayout),
                ]
                if withBias {
                    arguments.append(PrimitiveArgument(DNNL_ARG_DIFF_BIAS, [g.outChannels], weights + weightFloats))
                }
                compiled.execute(stream, arguments)
            }
        }
        let total = partials.pointer
        for index in 1..<shares {
            let partial = partials.pointer + index * (weightFloats + g.outChannels)
            for j in 0..<(weightFloats + g.outChannels) { total[j] += partial[j] }
        }
        let dw = Storage(uninitializedCount: ShapeMath.count(g.weightShape))
        runtime.convert(from: weightLayout, total, to: MemoryDescriptor.plain(g.weightShape), dw.pointer)
        let db = withBias ? Storage(uninitializedCount: g.outChannels) : nil
        db?.pointer.update(from: total + weightFloats, count: g.outChannels)
        return (dw, db)
    }
}

/// A batch tensor (row-major, or in a oneDNN layout with the images one after another) read as
/// `count` equal runs of images, each described as a tensor of its own.
private struct ImageShares {
    let base: UnsafeMutableRawPointer
    let shareLayout: dnnl_memory_desc_t
    let shareBytes: Int

    init?(_ storage: Storage, _ dims: [Int], count: Int) {
        var whole = MemoryDescriptor.of(storage, as: dims)
        let elementBytes = whole.data_type == dnnl_bf16 ? 2 : 4
        let blocking = whole.format_desc.blocking
        let imageStride = withUnsafeBytes(of: blocking.strides) { $0.load(as: Int64.self) }
        let batchBlocked = withUnsafeBytes(of: blocking.inner_idxs) { indices in
            (0..<Int(blocking.inner_nblks)).contains { indices.load(fromByteOffset: $0 * 8, as: Int64.self) == 0 }
        }
        // Images back to back: the batch axis outermost, dense, and not blocked.
        guard whole.format_kind == dnnl_blocked, whole.offset0 == 0, !batchBlocked,
            dnnl_memory_desc_get_size(&whole) == dims[0] * Int(imageStride) * elementBytes
        else { return nil }
        var share = whole
        withUnsafeMutableBytes(of: &share.dims) { $0.storeBytes(of: Int64(dims[0] / count), as: Int64.self) }
        withUnsafeMutableBytes(of: &share.padded_dims) { $0.storeBytes(of: Int64(dims[0] / count), as: Int64.self) }
        (base, shareLayout) = (UnsafeMutableRawPointer(storage.pointer), share)
        shareBytes = dims[0] / count * Int(imageStride) * elementBytes
    }

    /// Share `index` as a primitive's argument `argument` of `dims`.
    func argument(_ argument: Int32, _ dims: [Int], _ index: Int) -> PrimitiveArgument {
        let pointer = (base + index * shareBytes).assumingMemoryBound(to: Float.self)
        return PrimitiveArgument(argument, dims, pointer, layout: shareLayout)
    }
}
