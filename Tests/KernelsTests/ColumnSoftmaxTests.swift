import CKernels
import Foundation
import Testing

/// The attention kernel's column softmax (AVX-512 where the CPU has it, plain C otherwise) against
/// a Double computation, on ragged widths and a row stride wider than the tile.
@Suite("Column softmax")
struct ColumnSoftmaxTests {
    @Test(arguments: [(1, 1), (7, 5), (1024, 128), (300, 17), (64, 130), (2, 16)])
    func forwardAndBackwardMatchDouble(_ shape: (Int, Int)) {
        let (keys, queries) = shape
        let stride = queries + 3
        var random = TestRandom(seed: UInt64(keys * 1000 + queries))
        let scores = random.doubles(keys * stride).map { Float($0 * 6) }
        let gradient = random.doubles(keys * stride).map(Float.init)
        for (name, forward, backward) in [
            ("dispatched", sagan_softmax_columns, sagan_softmax_columns_backward),
            ("portable", sagan_softmax_columns_portable, sagan_softmax_columns_backward_portable),
        ] {
            var p = scores
            forward(&p, Int32(keys), Int32(queries), Int32(stride))
            var d = gradient
            p.withUnsafeBufferPointer { backward($0.baseAddress!, &d, Int32(keys), Int32(queries), Int32(stride)) }
            var worstP = 0.0
            var worstD = 0.0
            for j in 0..<queries {
                let column = (0..<keys).map { Double(scores[$0 * stride + j]) }
                let maximum = column.max()!
                let e = column.map { exp($0 - maximum) }
                let sum = e.reduce(0, +)
                let expected = e.map { $0 / sum }
                let dot = (0..<keys).reduce(0.0) { $0 + expected[$1] * Double(gradient[$1 * stride + j]) }
                for i in 0..<keys {
                    worstP = max(worstP, abs(Double(p[i * stride + j]) - expected[i]))
                    worstD = max(
                        worstD, abs(Double(d[i * stride + j]) - expected[i] * (Double(gradient[i * stride + j]) - dot)))
                }
            }
            #expect(worstP < 1e-6 && worstD < 1e-6, "\(name) \(shape): softmax off by \(worstP), backward by \(worstD)")
            // Columns beyond the tile's width are left alone.
            for i in 0..<keys {
                for j in queries..<stride {
                    #expect(
                        p[i * stride + j] == scores[i * stride + j] && d[i * stride + j] == gradient[i * stride + j])
                }
            }
        }
    }

    /// Without its last pass the softmax leaves exp(x − max) and the inverse column sums, whose
    /// product is the softmax.
    @Test(arguments: [(1024, 128), (300, 17), (7, 5)])
    func unnormalizedTimesInverseSumsIsTheSoftmax(_ shape: (Int, Int)) {
        let (keys, queries) = shape
        let stride = queries + 2
        var random = TestRandom(seed: UInt64(keys + queries))
        let scores = random.doubles(keys * stride).map { Float($0 * 6) }
        for (name, normalized, unnormalized) in [
            ("dispatched", sagan_softmax_columns, sagan_softmax_columns_unnormalized),
            ("portable", sagan_softmax_columns_portable, sagan_softmax_columns_unnormalized_portable),
        ] {
            var p = scores
            var e = scores
            var inverseSums = [Float](repeating: .nan, count: queries)
            normalized(&p, Int32(keys), Int32(queries), Int32(stride))
            unnormalized(&e, Int32(keys), Int32(queries), Int32(stride), &inverseSums)
            var worst: Float = 0
            for i in 0..<keys {
                for j in 0..<queries { worst = max(worst, abs(e[i * stride + j] * inverseSums[j] - p[i * stride + j])) }
            }
            #expect(worst < 1e-6, "\(name) \(shape): off by \(worst)")
            #expect(
                inverseSums.allSatisfy { $0 > 0 && $0 <= 1 },
                "\(name): the largest term is exp(0) = 1, so every sum is at least 1")
            // The backward from the unnormalised tile and its scales equals the backward from the softmax.
            let gradient = random.doubles(keys * stride).map(Float.init)
            var fromSoftmax = gradient
            var fromUnnormalized = gradient
            sagan_softmax_columns_backward(p, &fromSoftmax, Int32(keys), Int32(queries), Int32(stride))
            let unnormalizedBackward =
                name == "portable"
                ? sagan_softmax_columns_backward_unnormalized_portable
                : sagan_softmax_columns_backward_unnormalized
            unnormalizedBackward(e, &fromUnnormalized, Int32(keys), Int32(queries), Int32(stride), inverseSums)
            let worstBackward = zip(fromSoftmax, fromUnnormalized).map { abs($0 - $1) }.max()!
            #expect(worstBackward < 1e-6, "\(name) \(shape): backward off by \(worstBackward)")
        }
    }
}
