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

    /// Scratch blocks of (keys, tile) floats, `perWorker` of them for each worker thread.
    private func scratch(_ g: AttentionGeometry, perWorker: Int) -> Storage {
        Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * perWorker * g.tile * g.keys)
    }

    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let q = plain(queries), k = plain(keys), v = plain(values)
        let o = Storage(uninitializedCount: g.batch * cv * n)
        let block = g.tile * m
        let work = scratch(g, perWorker: 1)
        withExtendedLifetime((q, k, v, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, _ in
                let (qb, kb, vb, ob) = (q.pointer + b * ck * n, k.pointer + b * ck * m, v.pointer + b * cv * m, o.pointer + b * cv * n)
                let pt = work.pointer + worker * block
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    attentionTile(g, q: qb, k: kb, t0: t0, rows: rows, pt: pt)
                    // o[:, t0..<t0+rows] = v · Pᵀ.
                    gemm(false, false, m: cv, n: rows, k: m, vb, m, pt, rows, ob + t0, n)
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
        let work = scratch(g, perWorker: 2)  // Pᵀ, and dPᵀ then dSᵀ
        withExtendedLifetime((q, k, v, dO, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, _ in
                let (qb, kb, vb, dOb) = (q.pointer + b * ck * n, k.pointer + b * ck * m, v.pointer + b * cv * m, dO.pointer + b * cv * n)
                let (dqb, dkb, dvb) = (dq.pointer + b * ck * n, dk.pointer + b * ck * m, dv.pointer + b * cv * m)
                let pt = work.pointer + 2 * worker * block, dst = pt + block
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
            }
        }
        return (dq, dk, dv)
    }
}
