import CDNNL
import CKernels

#if canImport(Glibc)
import Glibc
#endif

/// Fused attention on oneDNN: per query tile, dnnl_sgemm for the products and our vectorised
/// column softmax, so only a (keys, tile) block of the attention map exists at a time.
extension OneDNNBackend {
    /// Row-major C = op(A) · op(B) (+ C when `accumulate`).
    private func gemm(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false) {
        dnnlCheck(dnnl_sgemm(CChar(UInt8(ascii: transposeA ? "T" : "N")), CChar(UInt8(ascii: transposeB ? "T" : "N")),
                             Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b, Int64(ldb), accumulate ? 1 : 0, c, Int64(ldc)),
                  "sgemm \(m)x\(n)x\(k)")
    }

    /// Pᵀ (keys, rows) = softmax down the columns of kᵀ q for queries t0..<t0+rows of one image.
    /// Tiles are kept transposed so that both large products (v · Pᵀ forward, dO · P backward's
    /// partner) are plain matrix products, which sgemm runs about 1.5x faster than transposed ones.
    private func attentionTile(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, t0: Int, rows: Int,
                               pt: UnsafeMutablePointer<Float>) {
        gemm(true, false, m: g.keys, n: rows, k: g.keyChannels, k, g.keys, q + t0, g.queries, pt, rows)
        sagan_softmax_columns(pt, Int32(g.keys), Int32(rows), Int32(rows))
    }

    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let q = AttentionOperand(queries, [g.batch, ck, n]), k = AttentionOperand(keys, [g.batch, ck, m])
        let v = AttentionOperand(values, [g.batch, cv, m])
        let o = AttentionOperand(output: [g.batch, cv, n], like: values)
        // Per worker: the Pᵀ tile, then q, k, v and o of one image as row-major matrices.
        let (block, image) = (g.tile * m, ck * n + ck * m + cv * m + cv * n)
        let work = Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * (block + image))
        withExtendedLifetime((q, k, v, o, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let pt = work.pointer + worker * (block + image)
                let qb = pt + block, kb = qb + ck * n, vb = kb + ck * m, ob = vb + cv * m
                q.gather(image: b, into: qb, runtime, stream)
                k.gather(image: b, into: kb, runtime, stream)
                v.gather(image: b, into: vb, runtime, stream)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, pt: pt)
                    // o[:, t0..<t0+rows] = v · Pᵀ.
                    gemm(false, false, m: cv, n: rows, k: m, vb, m, pt, rows, ob + t0, n)
                }
                o.scatter(image: b, from: ob, runtime, stream)
            }
        }
        return o.storage
    }

    public func attentionBackward(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage)
        -> (queries: Storage, keys: Storage, values: Storage)
    {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let q = AttentionOperand(queries, [g.batch, ck, n]), k = AttentionOperand(keys, [g.batch, ck, m])
        let v = AttentionOperand(values, [g.batch, cv, m]), dO = AttentionOperand(outputGradient, [g.batch, cv, n])
        // Gradients in the layouts of their forward inputs: the convolutions that made those read them as they are.
        let dq = AttentionOperand(output: [g.batch, ck, n], like: queries), dk = AttentionOperand(output: [g.batch, ck, m], like: keys)
        let dv = AttentionOperand(output: [g.batch, cv, m], like: values)
        // Per worker: Pᵀ, dPᵀ then dSᵀ, then q, k, v, dO, dq, dk, dv of one image as row-major matrices.
        let (block, image) = (g.tile * m, 2 * (ck * n + ck * m + cv * m) + cv * n)
        let work = Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * (2 * block + image))
        withExtendedLifetime((q, k, v, dO, dq, dk, dv, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let pt = work.pointer + worker * (2 * block + image), dst = pt + block
                let qb = dst + block, kb = qb + ck * n, vb = kb + ck * m, dOb = vb + cv * m
                let dqb = dOb + cv * n, dkb = dqb + ck * n, dvb = dkb + ck * m
                q.gather(image: b, into: qb, runtime, stream)
                k.gather(image: b, into: kb, runtime, stream)
                v.gather(image: b, into: vb, runtime, stream)
                dO.gather(image: b, into: dOb, runtime, stream)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0), first = t0 == 0
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, pt: pt)
                    // dPᵀ = vᵀ · dO_tile;  dSᵀ = Pᵀ ⊙ (dPᵀ − colsum(dPᵀ ⊙ Pᵀ)).
                    gemm(true, false, m: m, n: rows, k: cv, vb, m, dOb + t0, n, dst, rows)
                    sagan_softmax_columns_backward(pt, dst, Int32(m), Int32(rows), Int32(rows))
                    // dq_tile = k · dSᵀ;  dk += q_tile · dS;  dv += dO_tile · P.
                    gemm(false, false, m: ck, n: rows, k: m, kb, m, dst, rows, dqb + t0, n)
                    gemm(false, true, m: ck, n: m, k: rows, qb + t0, n, dst, rows, dkb, m, accumulate: !first)
                    gemm(false, true, m: cv, n: m, k: rows, dOb + t0, n, pt, rows, dvb, m, accumulate: !first)
                }
                dq.scatter(image: b, from: dqb, runtime, stream)
                dk.scatter(image: b, from: dkb, runtime, stream)
                dv.scatter(image: b, from: dvb, runtime, stream)
            }
        }
        return (dq.storage, dk.storage, dv.storage)
    }
}

/// An attention operand (B, C, N) in the layout it came in: row-major, or channel-blocked as a
/// convolution wrote it (nChw16c read as (B, C, H·W)). Each image moves to and from a row-major
/// matrix in the worker's scratch (a oneDNN reorder of one image), so the layout costs no
/// separate pass over the batch and convolutions before and after need no reorders.
struct AttentionOperand {
    let storage: Storage
    let channels: Int
    let positions: Int
    /// Floats from one image to the next.
    let imageStride: Int
    /// One image's (1, C, N) layout; nil when row-major.
    let imageLayout: dnnl_memory_desc_t?

    /// `storage` read as `dims` (B, C, N).
    init(_ storage: Storage, _ dims: [Int]) {
        if let descriptor = (storage.layout as? DNNLLayout)?.descriptor(for: dims), let image = Self.imageLayout(descriptor, dims) {
            self.init(storage: storage, dims: dims, image: image)
        } else {
            self.init(storage: storage.rowMajor(), dims: dims, image: nil)
        }
    }

    /// A new (B, C, N) tensor in `like`'s layout when that describes `dims`, otherwise row-major.
    init(output dims: [Int], like: Storage) {
        if let layout = (like.layout as? DNNLLayout)?.reshaped(to: dims), let image = Self.imageLayout(layout.descriptor, dims) {
            self.init(storage: Storage(count: ShapeMath.count(dims), layout: layout), dims: dims, image: image)
        } else {
            self.init(storage: Storage(uninitializedCount: ShapeMath.count(dims)), dims: dims, image: nil)
        }
    }

    private init(storage: Storage, dims: [Int], image: (layout: dnnl_memory_desc_t, stride: Int)?) {
        (self.storage, channels, positions) = (storage, dims[1], dims[2])
        (imageLayout, imageStride) = (image?.layout, image?.stride ?? dims[1] * dims[2])
    }

    /// One image's layout and the distance between images, for a (B, C, N) layout that blocks only
    /// the channels by 4, 8 or 16 with images one after another; nil for any other layout.
    private static func imageLayout(_ descriptor: dnnl_memory_desc_t, _ dims: [Int]) -> (layout: dnnl_memory_desc_t, stride: Int)? {
        guard descriptor.ndims == 3, descriptor.format_kind == dnnl_blocked, descriptor.offset0 == 0 else { return nil }
        let blocking = descriptor.format_desc.blocking
        func element(_ dims: dnnl_dims_t, _ index: Int) -> Int {
            withUnsafeBytes(of: dims) { Int($0.load(fromByteOffset: index * MemoryLayout<Int64>.stride, as: Int64.self)) }
        }
        let tags: [Int: dnnl_format_tag_t] = [4: dnnl_aBc4b, 8: dnnl_aBc8b, 16: dnnl_aBc16b]
        guard blocking.inner_nblks == 1, element(blocking.inner_idxs, 0) == 1, let tag = tags[element(blocking.inner_blks, 0)] else { return nil }
        var image = dnnl_memory_desc_t()
        dnnlCheck(dnnl_memory_desc_init_by_tag(&image, 3, [1, Int64(dims[1]), Int64(dims[2])], dnnl_f32, tag), "attention image layout")
        // The whole tensor must be these images back to back.
        var whole = dnnl_memory_desc_t(), given = descriptor
        dnnlCheck(dnnl_memory_desc_init_by_tag(&whole, 3, dims.map(Int64.init), dnnl_f32, tag), "attention operand layout")
        guard dnnl_memory_desc_equal(&whole, &given) != 0 else { return nil }
        return (image, element(blocking.strides, 0))
    }

    /// Image `b` as a row-major (channels, positions) matrix at `destination`.
    func gather(image b: Int, into destination: UnsafeMutablePointer<Float>, _ runtime: DNNLRuntime, _ stream: dnnl_stream_t) {
        let source = storage.pointer + b * imageStride
        guard let imageLayout else { return destination.update(from: source, count: channels * positions) }
        runtime.convert(from: imageLayout, source, to: MemoryDescriptor.plain([1, channels, positions]), destination, on: stream)
    }

    /// Image `b` from a row-major (channels, positions) matrix.
    func scatter(image b: Int, from source: UnsafeMutablePointer<Float>, _ runtime: DNNLRuntime, _ stream: dnnl_stream_t) {
        let destination = storage.pointer + b * imageStride
        guard let imageLayout else { return destination.update(from: source, count: channels * positions) }
        runtime.convert(from: MemoryDescriptor.plain([1, channels, positions]), source, to: imageLayout, destination, on: stream)
    }
}
