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
}
