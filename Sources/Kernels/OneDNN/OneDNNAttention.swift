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

    /// P (rows, keys) = softmax over keys of qᵀ k for queries t0..<t0+rows of one image (in place).
    private func attentionTile(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, t0: Int, rows: Int,
                               p: UnsafeMutablePointer<Float>, stream: dnnl_stream_t) {
        gemm(true, false, m: rows, n: g.keys, k: g.keyChannels, q + t0, g.queries, k, g.keys, p, g.keys)
        softmaxForwardPrimitive(rows: rows, columns: g.keys)
            .execute(stream, [PrimitiveArgument(DNNL_ARG_SRC, [rows, g.keys], p), PrimitiveArgument(DNNL_ARG_DST, [rows, g.keys], p)])
    }

    /// Scratch blocks of (tile, keys) floats, `perWorker` of them for each worker thread.
    private func scratch(_ g: AttentionGeometry, perWorker: Int) -> Storage {
        Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * perWorker * g.tile * g.keys)
    }

    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let q = plain(queries), k = plain(keys), v = plain(values)
        let o = Storage(uninitializedCount: g.batch * cv * n)
        let block = g.tile * m
        let work = scratch(g, perWorker: 1)  // scores, then P
        withExtendedLifetime((q, k, v, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let (qb, kb, vb, ob) = (q.pointer + b * ck * n, k.pointer + b * ck * m, v.pointer + b * cv * m, o.pointer + b * cv * n)
                let p = work.pointer + worker * block
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, p: p, stream: stream)
                    // o[:, t0..<t0+rows] = v · Pᵀ.
                    gemm(false, true, m: cv, n: rows, k: m, vb, m, p, m, ob + t0, n)
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
        let block = g.tile * m
        let work = scratch(g, perWorker: 2)  // P, and dP then dS
        withExtendedLifetime((q, k, v, dO, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let (qb, kb, vb, dOb) = (q.pointer + b * ck * n, k.pointer + b * ck * m, v.pointer + b * cv * m, dO.pointer + b * cv * n)
                let (dqb, dkb, dvb) = (dq.pointer + b * ck * n, dk.pointer + b * ck * m, dv.pointer + b * cv * m)
                let p = work.pointer + 2 * worker * block, dp = p + block, ds = dp
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0), first = t0 == 0
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, p: p, stream: stream)
                    // dP = dO_tileᵀ · v;  dS = P ⊙ (dP − rowsum(dP ⊙ P)).
                    gemm(true, false, m: rows, n: m, k: cv, dOb + t0, n, vb, m, dp, m)
                    softmaxBackwardPrimitive(rows: rows, columns: m)
                        .execute(stream, [PrimitiveArgument(DNNL_ARG_DST, [rows, m], p), PrimitiveArgument(DNNL_ARG_DIFF_DST, [rows, m], dp),
                                          PrimitiveArgument(DNNL_ARG_DIFF_SRC, [rows, m], ds)])
                    // dq_tile = k · dSᵀ;  dk += q_tile · dS;  dv += dO_tile · P.
                    gemm(false, true, m: ck, n: rows, k: m, kb, m, ds, m, dqb + t0, n)
                    gemm(false, false, m: ck, n: m, k: rows, qb + t0, n, ds, m, dkb, m, accumulate: !first)
                    gemm(false, false, m: cv, n: m, k: rows, dOb + t0, n, p, m, dvb, m, accumulate: !first)
                }
            }
        }
        return (dq, dk, dv)
    }
}
