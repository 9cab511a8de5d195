import CKernels
import Kernels
import Testing

/// Moving one image between the 16-channel-blocked layout and planar channels `stride` floats apart:
/// every element lands where the layout says (blocked[(c / 16)·positions·16 + p·16 + c % 16] =
/// planar[c·stride + p]), the padding lanes of a partial last block come out zero, and the AVX-512
/// and plain versions agree; with bf16 elements, each rounded as BFloat16.round on the way in (ties,
/// subnormals, infinities and NaNs among them) and widened exactly on the way out.
@Suite("Channel blocks")
struct ChannelBlockTests {
    @Test(arguments: [(16, 1024), (64, 32), (8, 37), (20, 5), (3, 16)])
    func blockAndUnblock(_ shape: (Int, Int)) {
        let (channels, positions) = shape
        let padded = (channels + 15) / 16 * 16
        let stride = positions + 16
        let planar = (0..<channels * stride).map { $0 % stride < positions ? Float($0) + 0.5 : .nan }
        for (name, block, unblock) in [
            ("dispatched", sagan_block16, sagan_unblock16),
            ("portable", sagan_block16_portable, sagan_unblock16_portable),
        ] {
            var blocked = [Float](repeating: .nan, count: padded * positions)
            block(planar, stride, channels, positions, &blocked)
            var wrong = 0
            for c in 0..<padded {
                for p in 0..<positions {
                    let expected: Float = c < channels ? planar[c * stride + p] : 0
                    if blocked[(c / 16) * positions * 16 + p * 16 + c % 16] != expected { wrong += 1 }
                }
            }
            #expect(wrong == 0, "\(name) \(shape): \(wrong) misplaced elements after blocking")
            var back = [Float](repeating: .nan, count: channels * stride)
            unblock(blocked, channels, positions, &back, stride)
            let same = (0..<channels).allSatisfy { c in
                (0..<positions).allSatisfy { back[c * stride + $0] == planar[c * stride + $0] }
            }
            #expect(same, "\(name) \(shape): unblocking does not give the planar image back")
        }
    }

    @Test(arguments: [(16, 1024), (64, 32), (8, 37), (20, 5), (3, 16)])
    func blockAndUnblockBF16(_ shape: (Int, Int)) {
        let (channels, positions) = shape
        let padded = (channels + 15) / 16 * 16
        let stride = positions + 16
        let specials: [Float] = [
            Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), .leastNonzeroMagnitude,
            -.leastNormalMagnitude / 3, .infinity, -.infinity, .nan, 1.001, -2.7e-3,
        ]
        let planar = (0..<channels * stride).map { index -> Float in
            index % stride < positions ? specials[index % specials.count] * Float(1 + index % 5) : .nan
        }
        for (name, block, unblock) in [
            ("dispatched", sagan_block16_bf16, sagan_unblock16_bf16),
            ("portable", sagan_block16_bf16_portable, sagan_unblock16_bf16_portable),
        ] {
            var blocked = [UInt16](repeating: 0xFFFF, count: padded * positions)
            block(planar, stride, channels, positions, &blocked)
            var wrong = 0
            for c in 0..<padded {
                for p in 0..<positions {
                    let expected = c < channels ? BFloat16.round(planar[c * stride + p]).bitPattern >> 16 : 0
                    if UInt32(blocked[(c / 16) * positions * 16 + p * 16 + c % 16]) != expected { wrong += 1 }
                }
            }
            #expect(wrong == 0, "\(name) \(shape): \(wrong) misplaced or misrounded elements after blocking")
            var back = [Float](repeating: .nan, count: channels * stride)
            unblock(blocked, channels, positions, &back, stride)
            let same = (0..<channels).allSatisfy { c in
                (0..<positions).allSatisfy {
                    back[c * stride + $0].bitPattern == BFloat16.round(planar[c * stride + $0]).bitPattern
                }
            }
            #expect(same, "\(name) \(shape): unblocking does not give the rounded image back")
        }
    }

    /// A bf16 blocked image's channels in pairs: word j of pair plane p holds channels 2p and 2p + 1 at
    /// position j (0 for the channel past an odd count), from both versions.
    @Test(arguments: [(16, 1024), (8, 37), (20, 5), (3, 16), (32, 33)])
    func unblockBF16Pairs(_ shape: (Int, Int)) {
        let (channels, positions) = shape
        let padded = (channels + 15) / 16 * 16
        let planar = (0..<channels * positions).map { BFloat16.round(Float($0 % 509) * 0.25 - 60) }
        var blocked = [UInt16](repeating: 0xFFFF, count: padded * positions)
        sagan_block16_bf16_portable(planar, positions, channels, positions, &blocked)
        let (pairCount, pairStride) = ((channels + 1) / 2, positions + 3)
        for (name, unblock) in [
            ("dispatched", sagan_unblock16_bf16_pairs), ("portable", sagan_unblock16_bf16_pairs_portable),
        ] {
            var pairs = [UInt32](repeating: 0xDEAD_BEEF, count: pairCount * pairStride)
            unblock(blocked, channels, positions, &pairs, pairStride)
            var wrong = 0
            for p in 0..<pairCount {
                for j in 0..<positions {
                    let low = planar[2 * p * positions + j].bitPattern >> 16
                    let high = 2 * p + 1 < channels ? planar[(2 * p + 1) * positions + j].bitPattern & 0xFFFF_0000 : 0
                    if pairs[p * pairStride + j] != low | high { wrong += 1 }
                }
            }
            #expect(wrong == 0, "\(name) \(shape): \(wrong) words wrong")
        }
    }

    /// 4x4 weights (O, I, 4, 4) into oneDNN's bf16 pair-blocked layouts: in square (o / 16, i / 16),
    /// tap t, the 32-bit word (p, l) holds channels 2p and 2p + 1 of the paired axis (inputs for the
    /// forward layout, outputs for the backward-data one) in its low and high halves, each W/σ
    /// rounded as BFloat16.round; and swapping layouts moves every bf16 value exactly.
    @Test(
        .enabled(if: sagan_kernels_use_avx512() != 0, "the weight transposes are AVX-512 kernels"),
        arguments: [(16, 16), (32, 48), (64, 16)])
    func weightsToBF16Blocks(_ shape: (Int, Int)) {
        let (outputs, inputs) = shape
        let sigma: Float = 2  // exact, so the ties and subnormals stay ties and subnormals
        let specials: [Float] = [
            Float(bitPattern: 0x4040_C000), Float(bitPattern: 0x4041_C000), .leastNormalMagnitude / 5, -.infinity,
        ]
        let plain = (0..<outputs * inputs * 16).map { index -> Float in
            index % 97 < specials.count ? specials[index % 97] : Float(index % 251) * 0.013 - 1.6
        }
        let words = outputs * inputs * 8
        func expected(_ outputFastest: Bool, _ word: Int) -> UInt32 {
            let (square, inside) = (word / (16 * 128), word % (16 * 128))
            let (ob, ib) = (square / (inputs / 16), square % (inputs / 16))
            let (tap, pair, lane) = (inside / 128, inside % 128 / 16, inside % 16)
            let halves = (0..<2).map { half -> UInt32 in
                let (o, i) = outputFastest ? (lane, 2 * pair + half) : (2 * pair + half, lane)
                return BFloat16.round(plain[((ob * 16 + o) * inputs + ib * 16 + i) * 16 + tap] / sigma).bitPattern >> 16
            }
            return halves[0] | halves[1] << 16
        }
        var layouts: [[UInt32]] = []
        for outputFastest in [true, false] {
            var blocked = [UInt32](repeating: 0xDEAD_BEEF, count: words)
            sagan_weights_to_blocked16_bf16(
                plain, outputs, inputs, outputFastest ? 1 : 0, sigma, &blocked, 0, outputs / 16)
            let wrong = (0..<words).filter { blocked[$0] != expected(outputFastest, $0) }.count
            #expect(wrong == 0, "\(shape) outputFastest \(outputFastest): \(wrong) of \(words) words wrong")
            layouts.append(blocked)
        }
        for (from, to) in [(0, 1), (1, 0)] {
            var swapped = [UInt32](repeating: 0, count: words)
            sagan_weights_swap_blocked16_bf16(layouts[from], outputs, inputs, &swapped, 0, outputs / 16)
            #expect(swapped == layouts[to], "\(shape): swapping layout \(from) does not give layout \(to)")
        }
    }
}
