extension ReferenceKernels {
    /// o (B, Cv, N) = v · softmax(qᵀ k)ᵀ, one query tile at a time (the oracle for the fused kernels).
    /// `operand` is applied to the attention row before it multiplies v (bf16 rounding under bf16).
    public static func attention<T: ReferenceScalar>(
        _ g: AttentionGeometry, o: UnsafeMutablePointer<T>, q: UnsafePointer<T>, k: UnsafePointer<T>,
        v: UnsafePointer<T>, operand: (T) -> T = { $0 }
    ) {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        var p = [T](repeating: 0, count: m)
        for b in 0..<g.batch {
            let (qb, kb, vb, ob) = (q + b * ck * n, k + b * ck * m, v + b * cv * m, o + b * cv * n)
            for query in 0..<n {
                attentionRow(query, n: n, m: m, ck: ck, q: qb, k: kb, p: &p)
                for key in 0..<m { p[key] = operand(p[key]) }
                for c in 0..<cv {
                    var sum: T = 0
                    for key in 0..<m { sum += vb[c * m + key] * p[key] }
                    ob[c * n + query] = sum
                }
            }
        }
    }

    /// Gradients of `attention`: dq, dk, dv from dO, recomputing each query's attention row.
    /// `operand` is applied to P and dS where they multiply (bf16 rounding under bf16).
    public static func attentionBackward<T: ReferenceScalar>(
        _ g: AttentionGeometry, dq: UnsafeMutablePointer<T>, dk: UnsafeMutablePointer<T>, dv: UnsafeMutablePointer<T>,
        q: UnsafePointer<T>, k: UnsafePointer<T>, v: UnsafePointer<T>, dO: UnsafePointer<T>,
        operand: (T) -> T = { $0 }
    ) {
        let (n, m, ck, cv) = (g.queries, g.keys, g.keyChannels, g.valueChannels)
        dq.initialize(repeating: 0, count: g.batch * ck * n)
        dk.initialize(repeating: 0, count: g.batch * ck * m)
        dv.initialize(repeating: 0, count: g.batch * cv * m)
        var p = [T](repeating: 0, count: m)
        var dp = [T](repeating: 0, count: m)
        for b in 0..<g.batch {
            let (qb, kb, vb, dOb) = (q + b * ck * n, k + b * ck * m, v + b * cv * m, dO + b * cv * n)
            let (dqb, dkb, dvb) = (dq + b * ck * n, dk + b * ck * m, dv + b * cv * m)
            for query in 0..<n {
                attentionRow(query, n: n, m: m, ck: ck, q: qb, k: kb, p: &p)
                // dP[m] = Σ_c dO[c, n] v[c, m];  dv[c, m] += dO[c, n] P[m].
                var dot: T = 0
                for key in 0..<m {
                    var sum: T = 0
                    let pOperand = operand(p[key])
                    for c in 0..<cv {
                        sum += dOb[c * n + query] * vb[c * m + key]
                        dvb[c * m + key] += dOb[c * n + query] * pOperand
                    }
                    dp[key] = sum
                    dot += sum * p[key]
                }
                // dS = P ⊙ (dP − Σ dP ⊙ P);  dq[c, n] += Σ_m k[c, m] dS[m];  dk[c, m] += q[c, n] dS[m].
                for key in 0..<m {
                    let ds = operand(p[key] * (dp[key] - dot))
                    for c in 0..<ck {
                        dqb[c * n + query] += kb[c * m + key] * ds
                        dkb[c * m + key] += qb[c * n + query] * ds
                    }
                }
            }
        }
    }

    /// p = softmax over keys of the scores of one query.
    private static func attentionRow<T: ReferenceScalar>(
        _ query: Int, n: Int, m: Int, ck: Int, q: UnsafePointer<T>, k: UnsafePointer<T>, p: inout [T]
    ) {
        var largest = -T.infinity
        for key in 0..<m {
            var score: T = 0
            for c in 0..<ck { score += q[c * n + query] * k[c * m + key] }
            p[key] = score
            largest = max(largest, score)
        }
        var total: T = 0
        for key in 0..<m {
            p[key] = T.exponential(p[key] - largest)
            total += p[key]
        }
        for key in 0..<m { p[key] /= total }
    }
}
