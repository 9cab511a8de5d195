import CDNNL
import CKernels

#if canImport(Glibc)
    import Glibc
#endif

/// Fused attention on oneDNN: per query tile, dnnl_sgemm for the products and our vectorised
/// column softmax, so only a (keys, tile) block of the attention map exists at a time. Tiles are
/// kept transposed (Eᵀ, keys × queries) so that both large products (v · Eᵀ forward, vᵀ · dO
/// backward) are plain matrix products, which sgemm runs about 1.5x faster than transposed ones;
/// the softmax's normalisation is never applied to a tile but folded into the (smaller) output
/// columns forward and into the softmax backward and dO's columns backward. Under bf16 the products
/// run on our bf16 kernels instead (OneDNNAttentionBF16.swift).
extension OneDNNBackend {
    /// Row-major C = op(A) · op(B) (+ C when `accumulate`).
    func gemm(
        _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false
    ) {
        dnnlCheck(
            dnnl_sgemm(
                CChar(UInt8(ascii: transposeA ? "T" : "N")), CChar(UInt8(ascii: transposeB ? "T" : "N")),
                Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b, Int64(ldb), accumulate ? 1 : 0, c, Int64(ldc)),
            "sgemm \(m)x\(n)x\(k)")
    }

    /// What runs the attention's products in `g`'s precision, as `sagan bench` reports it.
    private func noteAttention(_ kind: String, _ g: AttentionGeometry) {
        let products = g.precision == .bf16 ? "sagan_gemm_bf16:avx512_bf16" : "sgemm:\(instructionSet ?? "?")"
        runtime.noteKernel(kind, products, shape: "\(g)")
    }

    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        noteAttention("attention forward", g)
        if g.precision == .bf16 { return attentionBF16(g, queries: queries, keys: keys, values: values) }
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let (q, k, v) = AttentionOperands.inputs(g, queries: queries, keys: keys, values: values)
        let o = ImageOperand(output: [g.batch, cv, n], like: values)
        // Per worker: the Eᵀ tile and its column scales, then q, k, v and o of one image as row-major matrices.
        let (block, image) = (g.tile * m + g.tile, ck * n + ck * m + cv * m + cv * n)
        let work = Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * (block + image))
        withExtendedLifetime((q, k, v, o, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let et = work.pointer + worker * (block + image)
                let inverseSums = et + g.tile * m
                let qb = et + block
                let kb = qb + ck * n
                let vb = kb + ck * m
                let ob = vb + cv * m
                q.gather(image: b, into: qb, runtime, stream)
                k.gather(image: b, into: kb, runtime, stream)
                v.gather(image: b, into: vb, runtime, stream)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    // Eᵀ = exp(kᵀ q − column max), Pᵀ = Eᵀ scaled by column: o[:, tile] = (v · Eᵀ) scaled by column.
                    gemm(true, false, m: m, n: rows, k: ck, kb, m, qb + t0, n, et, rows)
                    sagan_softmax_columns_unnormalized(et, Int32(m), Int32(rows), Int32(rows), inverseSums)
                    gemm(false, false, m: cv, n: rows, k: m, vb, m, et, rows, ob + t0, n)
                    for channel in 0..<cv { sagan_scale_row(ob + channel * n + t0, inverseSums, Int32(rows)) }
                }
                o.scatter(image: b, from: ob, runtime, stream)
            }
        }
        return o.storage
    }

    public func attentionBackward(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    )
        -> (queries: Storage, keys: Storage, values: Storage)
    {
        noteAttention("attention backward", g)
        if g.precision == .bf16 {
            return attentionBackwardBF16(
                g, queries: queries, keys: keys, values: values, outputGradient: outputGradient)
        }
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let (q, k, v) = AttentionOperands.inputs(g, queries: queries, keys: keys, values: values)
        let dO = ImageOperand(outputGradient, [g.batch, cv, n])
        let (dq, dk, dv) = AttentionOperands.gradients(g, queries: queries, keys: keys, values: values)
        // Per worker: Eᵀ, dPᵀ then dSᵀ, E's column scales and dO's tile scaled by them, then q, k, v,
        // dO, dq, dk, dv of one image as row-major matrices.
        let (block, image) = (g.tile * m, g.tile + cv * g.tile + 2 * (ck * n + ck * m + cv * m) + cv * n)
        let work = Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * (2 * block + image))
        withExtendedLifetime((q, k, v, dO, dq, dk, dv, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let et = work.pointer + worker * (2 * block + image)
                let dst = et + block
                let inverseSums = dst + block
                let scaledGradient = inverseSums + g.tile
                let qb = scaledGradient + cv * g.tile
                let kb = qb + ck * n
                let vb = kb + ck * m
                let dOb = vb + cv * m
                let dqb = dOb + cv * n
                let dkb = dqb + ck * n
                let dvb = dkb + ck * m
                q.gather(image: b, into: qb, runtime, stream)
                k.gather(image: b, into: kb, runtime, stream)
                v.gather(image: b, into: vb, runtime, stream)
                dO.gather(image: b, into: dOb, runtime, stream)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    let first = t0 == 0
                    // The forward's tile again: Eᵀ = exp(kᵀ q − column max), Pᵀ = Eᵀ scaled by column (never formed).
                    gemm(true, false, m: m, n: rows, k: ck, kb, m, qb + t0, n, et, rows)
                    sagan_softmax_columns_unnormalized(et, Int32(m), Int32(rows), Int32(rows), inverseSums)
                    // dPᵀ = vᵀ · dO_tile;  dSᵀ = Pᵀ ⊙ (dPᵀ − colsum(dPᵀ ⊙ Pᵀ)).
                    gemm(true, false, m: m, n: rows, k: cv, vb, m, dOb + t0, n, dst, rows)
                    sagan_softmax_columns_backward_unnormalized(
                        et, dst, Int32(m), Int32(rows), Int32(rows), inverseSums)
                    // dq_tile = k · dSᵀ;  dk += q_tile · dS;  dv += dO_tile · P = (dO_tile scaled by column) · E.
                    gemm(false, false, m: ck, n: rows, k: m, kb, m, dst, rows, dqb + t0, n)
                    gemm(false, true, m: ck, n: m, k: rows, qb + t0, n, dst, rows, dkb, m, accumulate: !first)
                    for channel in 0..<cv {
                        (scaledGradient + channel * rows).update(from: dOb + channel * n + t0, count: rows)
                        sagan_scale_row(scaledGradient + channel * rows, inverseSums, Int32(rows))
                    }
                    gemm(false, true, m: cv, n: m, k: rows, scaledGradient, rows, et, rows, dvb, m, accumulate: !first)
                }
                dq.scatter(image: b, from: dqb, runtime, stream)
                dk.scatter(image: b, from: dkb, runtime, stream)
                dv.scatter(image: b, from: dvb, runtime, stream)
            }
        }
        return (dq.storage, dk.storage, dv.storage)
    }
}

/// The fused attention's operands, one image at a time (Float32 and bf16 kernels alike).
enum AttentionOperands {
    /// q (B, Ck, N), k (B, Ck, M), v (B, Cv, M) in the layouts they came in.
    static func inputs(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage)
        -> (ImageOperand, ImageOperand, ImageOperand)
    {
        (
            ImageOperand(queries, [g.batch, g.keyChannels, g.queries]),
            ImageOperand(keys, [g.batch, g.keyChannels, g.keys]),
            ImageOperand(values, [g.batch, g.valueChannels, g.keys])
        )
    }

    /// dq, dk, dv in the layouts of their forward inputs: the convolutions that made those read them as they are.
    static func gradients(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage)
        -> (ImageOperand, ImageOperand, ImageOperand)
    {
        (
            ImageOperand(output: [g.batch, g.keyChannels, g.queries], like: queries),
            ImageOperand(output: [g.batch, g.keyChannels, g.keys], like: keys),
            ImageOperand(output: [g.batch, g.valueChannels, g.keys], like: values)
        )
    }
}
