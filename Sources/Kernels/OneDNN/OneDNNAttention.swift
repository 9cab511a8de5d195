import CDNNL

#if canImport(Glibc)
import Glibc
#endif

/// Fused attention on oneDNN: per query tile, dnnl_sgemm for the products and the softmax
/// primitives for the rows, so only a (tile, keys) block of the attention map exists at a time.
extension OneDNNBackend {
    /// Row-major C = op(A) · op(B) (+ C when `accumulate`).
    private func gemm(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false) {
        dnnlCheck(dnnl_sgemm(CChar(UInt8(ascii: transposeA ? "T" : "N")), CChar(UInt8(ascii: transposeB ? "T" : "N")),
                             Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b, Int64(ldb), accumulate ? 1 : 0, c, Int64(ldc)),
                  "sgemm \(m)x\(n)x\(k)")
    }

    /// P (rows, keys) = softmax over keys of qᵀ k for queries t0..<t0+rows of one image.
    private func attentionTile(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, t0: Int, rows: Int,
                               scores: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>) {
        gemm(true, false, m: rows, n: g.keys, k: g.keyChannels, q + t0, g.queries, k, g.keys, scores, g.keys)
        let softmax = softmaxForwardPrimitive(rows: rows, columns: g.keys)
        runtime.execute(softmax, [(DNNL_ARG_SRC, [rows, g.keys], scores), (DNNL_ARG_DST, [rows, g.keys], p)])
    }

    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let q = plain(queries), k = plain(keys), v = plain(values)
        let o = Storage(uninitializedCount: g.batch * cv * n)
        let scores = Storage(uninitializedCount: g.tile * m), p = Storage(uninitializedCount: g.tile * m)
        withExtendedLifetime((q, k, v, scores, p)) {
            for b in 0..<g.batch {
                let (qb, kb, vb, ob) = (q.pointer + b * ck * n, k.pointer + b * ck * m, v.pointer + b * cv * m, o.pointer + b * cv * n)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, scores: scores.pointer, p: p.pointer)
                    // o[:, t0..<t0+rows] = v · Pᵀ.
                    gemm(false, true, m: cv, n: rows, k: m, vb, m, p.pointer, m, ob + t0, n)
                }
            }
        }
        return o
    }

    public func attentionBackward(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage)
        -> (queries: Storage, keys: Storage, values: Storage)
    {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let q = plain(queries), k = plain(keys), v = plain(values), dO = plain(outputGradient)
        let dq = Storage(uninitializedCount: q.count), dk = Storage(uninitializedCount: k.count), dv = Storage(uninitializedCount: v.count)
        let scores = Storage(uninitializedCount: g.tile * m), p = Storage(uninitializedCount: g.tile * m)
        let dp = Storage(uninitializedCount: g.tile * m), ds = Storage(uninitializedCount: g.tile * m)
        withExtendedLifetime((q, k, v, dO, scores, p, dp, ds)) {
            for b in 0..<g.batch {
                let (qb, kb, vb, dOb) = (q.pointer + b * ck * n, k.pointer + b * ck * m, v.pointer + b * cv * m, dO.pointer + b * cv * n)
                let (dqb, dkb, dvb) = (dq.pointer + b * ck * n, dk.pointer + b * ck * m, dv.pointer + b * cv * m)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0), first = t0 == 0
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, scores: scores.pointer, p: p.pointer)
                    // dP = dO_tileᵀ · v;  dS = P ⊙ (dP − rowsum(dP ⊙ P)).
                    gemm(true, false, m: rows, n: m, k: cv, dOb + t0, n, vb, m, dp.pointer, m)
                    let backward = softmaxBackwardPrimitive(rows: rows, columns: m)
                    runtime.execute(backward, [(DNNL_ARG_DST, [rows, m], p.pointer), (DNNL_ARG_DIFF_DST, [rows, m], dp.pointer),
                                               (DNNL_ARG_DIFF_SRC, [rows, m], ds.pointer)])
                    // dq_tile = k · dSᵀ;  dk += q_tile · dS;  dv += dO_tile · P.
                    gemm(false, true, m: ck, n: rows, k: m, kb, m, ds.pointer, m, dqb + t0, n)
                    gemm(false, false, m: ck, n: m, k: rows, qb + t0, n, ds.pointer, m, dkb, m, accumulate: !first)
                    gemm(false, false, m: cv, n: m, k: rows, dOb + t0, n, p.pointer, m, dvb, m, accumulate: !first)
                }
            }
        }
        return (dq, dk, dv)
    }
}
