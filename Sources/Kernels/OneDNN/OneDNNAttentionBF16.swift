import CKernels

/// The fused attention in bf16: the same tiles as the Float32 kernel (OneDNNAttention.swift), with
/// the products on `sagan_gemm_bf16` (vdpbf16ps) over operands rounded to bf16 as the reference
/// backend defines them: q, k, v and dO as they are gathered, Pᵀ normalised and dSᵀ as they are
/// formed. The thin products (the scores kᵀq, dq and dk, of depth or size C/8) run there too:
/// oneDNN's sgemm ran those shapes at a fraction of its speed (blog128's 32x32 map, batch 16, on a
/// Zen 4: forward 10.3 → 9.4 ms, alternating builds). The scores come with their column maxima
/// (`sagan_scores_bf16`), so the softmax makes one pass fewer. Softmax statistics stay Float32.
extension OneDNNBackend {
    func attentionBF16(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let (q, k, v) = AttentionOperands.inputs(g, queries: queries, keys: keys, values: values)
        let o = ImageOperand(output: [g.batch, cv, n], like: values)
        // Per worker: Eᵀ, its column maxima and scales, Pᵀ packed and the tile's q packed; then q, k, v and o
        // of one image as row-major Float32 matrices, v in bf16 (rows of m rounded up to even) and k packed.
        let (mPairs, ckPairs) = ((m + 1) / 2, (ck + 1) / 2)
        let block = g.tile * m + 2 * g.tile + mPairs * g.tile + ckPairs * g.tile
        let image = ck * n + ck * m + cv * m + cv * n + cv * mPairs + ckPairs * m
        let work = Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * (block + image))
        withExtendedLifetime((q, k, v, o, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let et = work.pointer + worker * (block + image)
                let maxima = et + g.tile * m
                let inverseSums = maxima + g.tile
                let packedP = bf16Pairs(inverseSums + g.tile)  // (m/2, tile) pairs
                let qpk = packedP + mPairs * g.tile  // (C/8 / 2, tile) pairs
                let qb = et + block
                let kb = qb + ck * n
                let vb = kb + ck * m
                let ob = vb + cv * m
                let vbf = ob + cv * n  // (Cv, m/2) pairs
                let kpk = bf16Pairs(vbf + cv * mPairs)  // (C/8 / 2, m) pairs
                q.gather(image: b, into: qb, runtime, stream)
                k.gather(image: b, into: kb, runtime, stream)
                v.gather(image: b, into: vb, runtime, stream)
                sagan_pack_bf16_rows(kb, ck, m, m, nil, kpk)
                sagan_convert_bf16(vb, cv, m, m, nil, bf16Halves(vbf), 2 * mPairs)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let rows = min(g.tile, n - t0)
                    // kᵀ q with its column maxima; Eᵀ = exp(kᵀ q − column max); Pᵀ = Eᵀ scaled by column,
                    // rounded; o[:, tile] = v · Pᵀ.
                    sagan_pack_bf16_rows(qb + t0, ck, rows, n, nil, qpk)
                    sagan_scores_bf16(m, rows, ckPairs, kpk, 1, m, qpk, et, rows, maxima)
                    sagan_softmax_columns_exponentials(et, Int32(m), Int32(rows), Int32(rows), maxima, inverseSums)
                    sagan_pack_bf16_rows(et, m, rows, rows, inverseSums, packedP)
                    sagan_gemm_bf16(cv, rows, mPairs, bf16Pairs(vbf), mPairs, 1, packedP, ob + t0, n, 0)
                }
                o.scatter(image: b, from: ob, runtime, stream)
            }
        }
        return o.storage
    }

    /// dPᵀ = vᵀ · dO, dvᵀ = Pᵀ · dOᵀ, dq = k · dSᵀ and dkᵀ = dSᵀ · qᵀ, all in bf16.
    func attentionBackwardBF16(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    ) -> (queries: Storage, keys: Storage, values: Storage) {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        let (q, k, v) = AttentionOperands.inputs(g, queries: queries, keys: keys, values: values)
        let dO = ImageOperand(outputGradient, [g.batch, cv, n])
        let (dq, dk, dv) = AttentionOperands.gradients(g, queries: queries, keys: keys, values: values)
        let (nPairs, cvPairs, tilePairs) = ((n + 1) / 2, (cv + 1) / 2, (g.tile + 1) / 2)
        let ckPairs = (ck + 1) / 2
        // Per worker: Eᵀ, dPᵀ, E's column scales, a packed operand, dSᵀ and Pᵀ in bf16 rows and dSᵀ packed;
        // then q, k, v, dO, dq, dk, dvᵀ, dv, dkᵀ of one image as row-major Float32 matrices, v and k
        // packed, dO, k and q in bf16.
        let mPairs = (m + 1) / 2
        let operandSize = max(cvPairs * g.tile, tilePairs * cv, ckPairs * g.tile, tilePairs * ck)
        let block = 2 * g.tile * m + 2 * g.tile + operandSize + 2 * m * tilePairs + mPairs * g.tile
        let packed = cvPairs * m + cv * nPairs + ckPairs * m + ck * mPairs + ck * nPairs
        let image = 2 * (ck * n + ck * m) + cv * n + 3 * cv * m + m * ck + packed
        let work = Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * (block + image))
        withExtendedLifetime((q, k, v, dO, dq, dk, dv, work)) {
            runtime.forEachItemInParallel(g.batch) { b, worker, stream in
                let et = work.pointer + worker * (block + image)
                let dst = et + g.tile * m
                let maxima = dst + g.tile * m
                let inverseSums = maxima + g.tile
                let operand = bf16Pairs(inverseSums + g.tile)
                let dstbf = inverseSums + g.tile + operandSize  // dSᵀ (m, tile/2) pairs
                let ptbf = dstbf + m * tilePairs  // Pᵀ (m, tile/2) pairs
                let dspk = bf16Pairs(ptbf + m * tilePairs)  // (m/2, tile) pairs
                let qb = et + block
                let kb = qb + ck * n
                let vb = kb + ck * m
                let dOb = vb + cv * m
                let dqb = dOb + cv * n
                let dkb = dqb + ck * n
                let dvt = dkb + ck * m  // dvᵀ (m, Cv)
                let dvb = dvt + m * cv
                let dkt = dvb + cv * m  // dkᵀ (m, C/8)
                let vpk = bf16Pairs(dkt + m * ck)  // (Cv/2, m) pairs
                let dObf = vpk + cvPairs * m  // (Cv, n/2) pairs
                let kpk = dObf + cv * nPairs  // (C/8 / 2, m) pairs
                let kbf = kpk + ckPairs * m  // (C/8, m/2) pairs
                let qbf = kbf + ck * mPairs  // (C/8, n/2) pairs
                q.gather(image: b, into: qb, runtime, stream)
                k.gather(image: b, into: kb, runtime, stream)
                v.gather(image: b, into: vb, runtime, stream)
                dO.gather(image: b, into: dOb, runtime, stream)
                sagan_pack_bf16_rows(kb, ck, m, m, nil, kpk)
                sagan_convert_bf16(kb, ck, m, m, nil, bf16Halves(kbf), 2 * mPairs)
                sagan_convert_bf16(qb, ck, n, n, nil, bf16Halves(qbf), 2 * nPairs)
                sagan_pack_bf16_rows(vb, cv, m, m, nil, vpk)
                sagan_convert_bf16(dOb, cv, n, n, nil, bf16Halves(dObf), 2 * nPairs)
                for t0 in stride(from: 0, to: n, by: g.tile) {
                    let (rows, first) = (min(g.tile, n - t0), t0 == 0)
                    let rowPairs = (rows + 1) / 2
                    // The forward's tile again, in Float32: Eᵀ = exp(kᵀ q − column max).
                    sagan_pack_bf16_rows(qb + t0, ck, rows, n, nil, operand)
                    sagan_scores_bf16(m, rows, ckPairs, kpk, 1, m, operand, et, rows, maxima)
                    sagan_softmax_columns_exponentials(et, Int32(m), Int32(rows), Int32(rows), maxima, inverseSums)
                    // dPᵀ = vᵀ · dO_tile;  dSᵀ = Pᵀ ⊙ (dPᵀ − colsum(dPᵀ ⊙ Pᵀ)) in Float32, rounded as it is
                    // written by key pairs (for dq) and in bf16 rows (for dk), and Pᵀ normalised and
                    // rounded in bf16 rows (for dv), all in the softmax backward's two passes.
                    sagan_pack_bf16_rows(dOb + t0, cv, rows, n, nil, operand)
                    sagan_gemm_bf16(m, rows, cvPairs, vpk, 1, m, operand, dst, rows, 0)
                    sagan_softmax_columns_backward_bf16(
                        et, dst, Int32(m), Int32(rows), Int32(rows), inverseSums, bf16Halves(ptbf), 2 * rowPairs,
                        dspk, bf16Halves(dstbf), 2 * rowPairs)
                    // dq_tile = k · dSᵀ;  dkᵀ += dSᵀ · q_tileᵀ.
                    sagan_gemm_bf16(ck, rows, mPairs, kbf, mPairs, 1, dspk, dqb + t0, n, 0)
                    sagan_transpose_pairs(qbf + t0 / 2, ck, rowPairs, nPairs, operand, ck)
                    sagan_gemm_bf16(m, ck, rowPairs, bf16Pairs(dstbf), rowPairs, 1, operand, dkt, ck, first ? 0 : 1)
                    // dvᵀ += Pᵀ · dO_tileᵀ.
                    sagan_transpose_pairs(dObf + t0 / 2, cv, rowPairs, nPairs, operand, cv)
                    sagan_gemm_bf16(m, cv, rowPairs, bf16Pairs(ptbf), rowPairs, 1, operand, dvt, cv, first ? 0 : 1)
                }
                sagan_transpose(dvt, m, cv, cv, dvb, m)
                sagan_transpose(dkt, m, ck, ck, dkb, m)
                dq.scatter(image: b, from: dqb, runtime, stream)
                dk.scatter(image: b, from: dkb, runtime, stream)
                dv.scatter(image: b, from: dvb, runtime, stream)
            }
        }
        return (dq.storage, dk.storage, dv.storage)
    }
}
