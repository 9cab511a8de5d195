import CDNNL
import CKernels

/// A batch operand (B, C, ...) of a kernel that works one image at a time on row-major data (the
/// fused attention, the direct convolution), in the layout it came in: row-major, or
/// channel-blocked as a convolution wrote it (nChw16c, or its reshape (B, C, H·W)), with Float32 or
/// bf16 elements. Each image moves to and from planar Float32 channels in the worker's scratch (our
/// 16x16 register transposes for blocks of 16, which also widen or round bf16; a oneDNN reorder of
/// the image otherwise), so the layout costs no separate pass over the batch and no reorders in the
/// convolutions around.
struct ImageOperand {
    let storage: Storage
    let channels: Int
    /// Elements per channel of one image.
    let positions: Int
    /// Elements from one image to the next.
    let imageStride: Int
    /// Bytes per element: 4, or 2 in a bf16 layout.
    let elementBytes: Int
    /// One image's layout; nil when row-major.
    let imageLayout: dnnl_memory_desc_t?
    /// Channels per block of that layout (1 when row-major); blocks of 16 move by our transposes.
    let block: Int
    /// (1, C, ...): one image's dims.
    let imageDims: [Int]

    /// `storage` read as `dims` (B, C, ...).
    init(_ storage: Storage, _ dims: [Int]) {
        if let descriptor = (storage.layout as? DNNLLayout)?.descriptor(for: dims),
            let image = Self.imageLayout(descriptor, dims)
        {
            self.init(storage: storage, dims: dims, image: image)
        } else {
            self.init(storage: storage.onHost(), dims: dims, image: nil)
        }
    }

    /// A new (B, C, ...) tensor in `like`'s layout when that describes `dims`, otherwise row-major.
    init(output dims: [Int], like: Storage) {
        self.init(output: dims, layout: (like.layout as? DNNLLayout)?.reshaped(to: dims))
    }

    /// A new (B, C, ...) tensor in `layout` when given and one image at a time can be written in it, otherwise
    /// row-major.
    init(output dims: [Int], layout: DNNLLayout?) {
        if let layout, let image = Self.imageLayout(layout.descriptor, dims) {
            self.init(storage: Storage(count: ShapeMath.count(dims), layout: layout), dims: dims, image: image)
        } else {
            self.init(storage: Storage(uninitializedCount: ShapeMath.count(dims)), dims: dims, image: nil)
        }
    }

    private init(storage: Storage, dims: [Int], image: (layout: dnnl_memory_desc_t, stride: Int, block: Int)?) {
        (self.storage, channels, positions, imageDims) = (
            storage, dims[1], dims.dropFirst(2).reduce(1, *), [1] + dims.dropFirst()
        )
        (imageLayout, imageStride, block) = (
            image?.layout, image?.stride ?? dims.dropFirst().reduce(1, *), image?.block ?? 1
        )
        elementBytes = image?.layout.data_type == dnnl_bf16 ? 2 : 4
    }

    /// One image's layout and the distance between images, for a (B, C, N) or (B, C, H, W) layout
    /// that blocks only the channels by 4, 8 or 16 with images one after another; nil for others.
    private static func imageLayout(_ descriptor: dnnl_memory_desc_t, _ dims: [Int]) -> (
        layout: dnnl_memory_desc_t, stride: Int, block: Int
    )? {
        guard descriptor.ndims == dims.count, descriptor.format_kind == dnnl_blocked, descriptor.offset0 == 0 else {
            return nil
        }
        let blocking = descriptor.format_desc.blocking
        func element(_ dims: dnnl_dims_t, _ index: Int) -> Int {
            withUnsafeBytes(of: dims) {
                Int($0.load(fromByteOffset: index * MemoryLayout<Int64>.stride, as: Int64.self))
            }
        }
        let tagsByRank: [Int: [Int: dnnl_format_tag_t]] = [
            3: [4: dnnl_aBc4b, 8: dnnl_aBc8b, 16: dnnl_aBc16b],
            4: [4: dnnl_aBcd4b, 8: dnnl_aBcd8b, 16: dnnl_aBcd16b],
        ]
        guard let tags = tagsByRank[dims.count], [dnnl_f32, dnnl_bf16].contains(descriptor.data_type) else {
            return nil
        }
        guard blocking.inner_nblks == 1, element(blocking.inner_idxs, 0) == 1,
            let tag = tags[element(blocking.inner_blks, 0)]
        else { return nil }
        let image = MemoryDescriptor.tagged([1] + dims.dropFirst(), descriptor.data_type, tag)
        // The whole tensor must be these images back to back.
        var whole = MemoryDescriptor.tagged(dims, descriptor.data_type, tag)
        var given = descriptor
        guard dnnl_memory_desc_equal(&whole, &given) != 0 else { return nil }
        return (image, element(blocking.strides, 0), element(blocking.inner_blks, 0))
    }

    /// One image's dims, row-major but for `channelStride` floats from one channel to the next.
    private func planarImage(channelStride: Int) -> dnnl_memory_desc_t {
        var strides = [Int](repeating: 1, count: imageDims.count)
        for axis in stride(from: imageDims.count - 2, through: 2, by: -1) {
            strides[axis] = strides[axis + 1] * imageDims[axis + 1]
        }
        (strides[1], strides[0]) = (channelStride, channels * channelStride)
        return MemoryDescriptor.strided(imageDims, strides)
    }

    /// Where image `b` starts (Float32 pointer type whatever the elements; oneDNN reads the layout).
    private func image(_ b: Int) -> UnsafeMutablePointer<Float> {
        (UnsafeMutableRawPointer(storage.pointer) + b * imageStride * elementBytes).assumingMemoryBound(to: Float.self)
    }

    /// Image `b` as planar channels at `destination`, each `positions` floats, `channelStride`
    /// (positions when nil) floats apart.
    func gather(
        image b: Int, into destination: UnsafeMutablePointer<Float>, channelStride: Int? = nil, _ runtime: DNNLRuntime,
        _ stream: dnnl_stream_t
    ) {
        let source = image(b)
        let channelStride = channelStride ?? positions
        if let imageLayout {
            if block == 16 {
                return elementBytes == 4
                    ? sagan_unblock16(source, channels, positions, destination, channelStride)
                    : sagan_unblock16_bf16(bf16Halves(source), channels, positions, destination, channelStride)
            }
            return runtime.convert(
                from: imageLayout, source, to: planarImage(channelStride: channelStride), destination, on: stream)
        }
        if channelStride == positions { return destination.update(from: source, count: channels * positions) }
        for c in 0..<channels {
            (destination + c * channelStride).update(from: source + c * positions, count: positions)
        }
    }

    /// Image `b`'s channels in pairs, planes `pairStride` words apart (the operand of our bf16 direct
    /// convolution): straight from a bf16 layout in blocks of 16, whose positions hold them so;
    /// otherwise gathered planar into `scratch` (channels × pairStride floats), rounded to bf16 when
    /// `rounding` (values not bf16 yet), and paired.
    func gatherPairs(
        image b: Int, into destination: UnsafeMutablePointer<UInt32>, pairStride: Int,
        scratch: UnsafeMutablePointer<Float>, rounding: Bool, _ runtime: DNNLRuntime, _ stream: dnnl_stream_t
    ) {
        if imageLayout != nil, block == 16, elementBytes == 2 {
            return sagan_unblock16_bf16_pairs(bf16Halves(image(b)), channels, positions, destination, pairStride)
        }
        gather(image: b, into: scratch, channelStride: pairStride, runtime, stream)
        if rounding { sagan_round_bf16(scratch, channels * pairStride) }
        sagan_pair_bf16_channels(scratch, channels, positions, pairStride, destination, pairStride)
    }

    /// Image `b` from planar channels laid out as `gather` writes them.
    func scatter(
        image b: Int, from source: UnsafeMutablePointer<Float>, channelStride: Int? = nil, _ runtime: DNNLRuntime,
        _ stream: dnnl_stream_t
    ) {
        let destination = image(b)
        let channelStride = channelStride ?? positions
        if let imageLayout {
            if block == 16 {
                return elementBytes == 4
                    ? sagan_block16(source, channelStride, channels, positions, destination)
                    : sagan_block16_bf16(source, channelStride, channels, positions, bf16Halves(destination))
            }
            return runtime.convert(
                from: planarImage(channelStride: channelStride), source, to: imageLayout, destination, on: stream)
        }
        if channelStride == positions { return destination.update(from: source, count: channels * positions) }
        for c in 0..<channels {
            (destination + c * positions).update(from: source + c * channelStride, count: positions)
        }
    }
}

/// Memory of bf16 elements (a bf16 layout's image, a packed operand) as the C kernels take it.
func bf16Halves(_ pointer: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt16> {
    pointer.assumingMemoryBound(to: UInt16.self)
}

/// Memory of bf16 pairs, two in each 32-bit word (a packed operand, channel pairs, a pair-blocked
/// weight), as the C kernels take it.
func bf16Pairs(_ pointer: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
    pointer.assumingMemoryBound(to: UInt32.self)
}
