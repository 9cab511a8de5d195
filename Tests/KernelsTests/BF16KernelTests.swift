import CKernels
import Kernels
import Testing

/// Our bf16 C kernels (the attention's products) against their plain C versions and the Swift rounding.
/// On a CPU without AVX512_BF16 both sides are the plain versions, and only the rounding checks bite.
@Suite("bf16 C kernels")
struct BF16KernelTests {
    func floats(_ count: Int, seed: UInt64) -> [Float] {
        var generator = TestRandom(seed: seed)
        return generator.floats(count).map { $0 * 3 }
    }

    /// bf16 pairs of random values, as the packers would make them.
    func pairs(_ count: Int, seed: UInt64) -> [UInt32] {
        let values = floats(2 * count, seed: seed).map { BFloat16.round($0).bitPattern >> 16 }
        return (0..<count).map { values[2 * $0] | values[2 * $0 + 1] << 16 }
    }

    /// (m, n, pairs, A read transposed): register-block tails in rows (6) and columns (64), odd depths;
    /// at most 8 columns from contiguous pairs (the two-pairs-per-product path), over one and two
    /// chunks of 128 pairs, and transposed (the general path).
    @Test(arguments: [
        (1, 1, 1, false), (6, 64, 8, false), (7, 65, 5, true), (13, 130, 33, false), (64, 128, 512, true),
        (7, 8, 5, false), (13, 3, 131, false), (1030, 8, 64, false), (5, 8, 6, true),
    ])
    func matrixProductMatchesPlainC(_ shape: (Int, Int, Int, Bool)) {
        let (m, n, depthPairs, transposed) = shape
        let a = pairs(m * depthPairs, seed: 1)
        let b = pairs(depthPairs * n, seed: 2)
        let (rowStride, pairStride) = transposed ? (1, m) : (depthPairs, 1)
        for accumulate in [Int32(0), 1] {
            var fast = floats(m * n, seed: 3)
            var plain = fast
            sagan_gemm_bf16(m, n, depthPairs, a, rowStride, pairStride, b, &fast, n, accumulate)
            sagan_gemm_bf16_portable(m, n, depthPairs, a, rowStride, pairStride, b, &plain, n, accumulate)
            let scale = max(1, plain.map { Swift.abs($0) }.max() ?? 0)
            let worst = zip(fast, plain).map { Swift.abs($0 - $1) }.max() ?? 0
            // The same exact products, summed in another order.
            #expect(
                worst <= 1e-5 * scale * Float(depthPairs).squareRoot(), "\(shape) accumulate \(accumulate): \(worst)")
        }
    }

    /// The attention's scores with their column maxima: (m, n, pairs) over the register kernel's row and
    /// column tails and every depth it takes (1–4 pairs), and deeper ones (the product and a maxima pass,
    /// over more than one group of 128 columns in the last).
    /// A is read transposed, as the attention packs k, where sagan_gemm_bf16 sums in the same order.
    @Test(arguments: [
        (1030, 128, 4), (7, 65, 3), (37, 130, 1), (5, 200, 2), (1, 1, 4), (64, 100, 5), (9, 17, 33), (20, 300, 6),
    ])
    func scoresMatchTheProductAndItsMaxima(_ shape: (Int, Int, Int)) {
        let (m, n, depthPairs) = shape
        let a = pairs(m * depthPairs, seed: 12)
        let b = pairs(depthPairs * n, seed: 13)
        let ldc = n + 3
        var scores = [Float](repeating: .nan, count: m * ldc)
        var product = scores
        var plain = scores
        var maxima = [Float](repeating: .nan, count: n)
        var plainMaxima = maxima
        sagan_scores_bf16(m, n, depthPairs, a, 1, m, b, &scores, ldc, &maxima)
        sagan_gemm_bf16(m, n, depthPairs, a, 1, m, b, &product, ldc, 0)
        sagan_scores_bf16_portable(m, n, depthPairs, a, 1, m, b, &plain, ldc, &plainMaxima)
        let written = (0..<m).flatMap { i in (0..<n).map { i * ldc + $0 } }
        #expect(written.allSatisfy { scores[$0] == product[$0] }, "\(shape): summed as sagan_gemm_bf16 sums")
        #expect(written.allSatisfy { Swift.abs(scores[$0] - plain[$0]) <= 1e-5 * 9 * Float(depthPairs) }, "\(shape)")
        let columnMaxima = (0..<n).map { j in (0..<m).map { scores[$0 * ldc + j] }.max()! }
        #expect(maxima == columnMaxima, "\(shape): each column's maximum")
        #expect(plainMaxima == (0..<n).map { j in (0..<m).map { plain[$0 * ldc + j] }.max()! }, "\(shape): plain")
        #expect((0..<m).allSatisfy { i in (n..<ldc).allSatisfy { scores[i * ldc + $0].isNaN } }, "past the columns")
    }

    /// The unnormalised softmax from given column maxima (as sagan_scores_bf16 finds them) is, bit for bit,
    /// the one that finds them itself. Shapes with an odd key count, a partial vector, and more than one
    /// group of 128 columns.
    @Test(arguments: [(37, 130), (64, 128), (1, 5), (1024, 16), (6, 257)])
    func exponentialsFromGivenMaximaMatchTheSoftmax(_ shape: (Int, Int)) {
        let (keys, queries) = shape
        let stride = queries + 2
        let scores = floats(keys * stride, seed: 14).map { $0 * 4 }
        let maxima = (0..<queries).map { j in (0..<keys).map { scores[$0 * stride + j] }.max()! }
        var (givenSums, ownSums) = ([Float](repeating: 0, count: queries), [Float](repeating: 0, count: queries))
        var (given, own) = (scores, scores)
        sagan_softmax_columns_exponentials(&given, Int32(keys), Int32(queries), Int32(stride), maxima, &givenSums)
        sagan_softmax_columns_unnormalized(&own, Int32(keys), Int32(queries), Int32(stride), &ownSums)
        #expect(given.map(\.bitPattern) == own.map(\.bitPattern), "\(shape): the exponentials")
        #expect(givenSums.map(\.bitPattern) == ownSums.map(\.bitPattern), "\(shape): the inverse sums")
    }

    /// In-place rounding: random values, ties both ways, subnormals (kept, not flushed), infinities
    /// and NaNs, over lengths with and without a ragged last vector.
    @Test(arguments: [6, 22, 37, 1000])
    func roundingMatchesPlainCAndSwift(_ count: Int) {
        let specials: [Float] = [
            .nan, -.infinity, .infinity, 0, -0, .leastNonzeroMagnitude, -.leastNormalMagnitude / 3,
            Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), .greatestFiniteMagnitude,
        ]
        let values = specials + floats(count, seed: 9)
        var fast = values
        var plain = fast
        sagan_round_bf16(&fast, fast.count)
        sagan_round_bf16_portable(&plain, plain.count)
        #expect(fast.map(\.bitPattern) == plain.map(\.bitPattern), "round \(count)")
        let swift = values.map { BFloat16.round($0) }
        #expect(
            zip(fast, swift).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
            "the C rounding should be BFloat16.round")
    }

    @Test(arguments: [(1, 1), (7, 33), (64, 128), (9, 16)])
    func packingMatchesTheRounding(_ shape: (Int, Int)) {
        let (depth, columns) = shape
        let stride = columns + 3
        let source = floats(depth * stride, seed: 4)
        let scales = floats(columns, seed: 5)
        for withScales in [false, true] {
            let pairCount = (depth + 1) / 2 * columns
            var fast = [UInt32](repeating: 7, count: pairCount)
            var plain = fast
            scales.withUnsafeBufferPointer { s in
                let given = withScales ? s.baseAddress : nil
                sagan_pack_bf16_rows(source, depth, columns, stride, given, &fast)
                sagan_pack_bf16_rows_portable(source, depth, columns, stride, given, &plain)
            }
            #expect(fast == plain, "pack \(shape) scales \(withScales)")
            for p in 0..<(depth + 1) / 2 {
                for j in 0..<columns {
                    let scale = withScales ? scales[j] : 1
                    let low = BFloat16.round(source[2 * p * stride + j] * scale).bitPattern >> 16
                    let high =
                        2 * p + 1 < depth ? BFloat16.round(source[(2 * p + 1) * stride + j] * scale).bitPattern : 0
                    #expect(plain[p * columns + j] == low | high, "pair \(p), column \(j)")
                }
            }
        }
    }

    @Test func conversionRoundsAndPads() {
        let (rows, columns, stride) = (5, 37, 40)
        let source = floats(rows * columns, seed: 6)
        let scales = floats(columns, seed: 7)
        var converted = [UInt16](repeating: 0xFFFF, count: rows * stride)
        sagan_convert_bf16(source, rows, columns, columns, scales, &converted, stride)
        for i in 0..<rows {
            for j in 0..<stride {
                let expected =
                    j < columns ? UInt16(BFloat16.round(source[i * columns + j] * scales[j]).bitPattern >> 16) : 0
                #expect(converted[i * stride + j] == expected, "row \(i), column \(j)")
            }
        }
    }

    /// The fused softmax backward of the bf16 attention writes, bit for bit, what the unfused kernels
    /// write in turn: P's bf16 rows, dS by key pairs and dS's bf16 rows (rows zero-padded). Shapes with
    /// an odd key count, a partial vector, and more than one group of 128 columns.
    @Test(arguments: [(37, 130), (64, 128), (1, 5), (1024, 16), (6, 257)])
    func fusedSoftmaxBackwardMatchesTheSteps(_ shape: (Int, Int)) {
        let (keys, queries) = shape
        let (stride, rowStride) = (queries + 2, (queries + 1) / 2 * 2)
        var e = floats(keys * stride, seed: 9).map { Swift.abs($0) }
        let dP = floats(keys * stride, seed: 10)
        let inverseSums = floats(queries, seed: 11).map { 1 / (Swift.abs($0) + 1) }
        let pairCount = (keys + 1) / 2 * queries
        var (pRows, dsRows) = (
            [UInt16](repeating: 0xFFFF, count: keys * rowStride), [UInt16](repeating: 0xFFFF, count: keys * rowStride)
        )
        var dsPairs = [UInt32](repeating: 7, count: pairCount)
        var scratch = dP
        sagan_softmax_columns_backward_bf16(
            &e, &scratch, Int32(keys), Int32(queries), Int32(stride), inverseSums, &pRows, rowStride, &dsPairs,
            &dsRows, rowStride)
        var (expectedP, expectedRows) = (
            [UInt16](repeating: 0xFFFF, count: keys * rowStride), [UInt16](repeating: 0xFFFF, count: keys * rowStride)
        )
        var expectedPairs = [UInt32](repeating: 7, count: pairCount)
        var ds = dP
        sagan_convert_bf16(e, keys, queries, stride, inverseSums, &expectedP, rowStride)
        sagan_softmax_columns_backward_unnormalized(e, &ds, Int32(keys), Int32(queries), Int32(stride), inverseSums)
        sagan_pack_bf16_rows(ds, keys, queries, stride, nil, &expectedPairs)
        sagan_convert_bf16(ds, keys, queries, stride, nil, &expectedRows, rowStride)
        func mismatches<T: Equatable>(_ a: [T], _ b: [T]) -> Int { zip(a, b).filter { $0 != $1 }.count }
        #expect(mismatches(pRows, expectedP) == 0, "\(shape): P's rows")
        #expect(mismatches(dsPairs, expectedPairs) == 0, "\(shape): dS by key pairs")
        #expect(mismatches(dsRows, expectedRows) == 0, "\(shape): dS's rows")
    }

    @Test func transposes() {
        let (rows, columns) = (19, 37)
        let source = floats(rows * columns, seed: 8)
        var transposed = [Float](repeating: 0, count: rows * columns)
        sagan_transpose(source, rows, columns, columns, &transposed, rows)
        var pairsTransposed = [UInt32](repeating: 0, count: rows * columns)
        sagan_transpose_pairs(source.map(\.bitPattern), rows, columns, columns, &pairsTransposed, rows)
        for i in 0..<rows {
            for j in 0..<columns {
                #expect(transposed[j * rows + i] == source[i * columns + j])
                #expect(pairsTransposed[j * rows + i] == source[i * columns + j].bitPattern)
            }
        }
    }
}
