import CKernels
import Testing

/// Moving one image between the 16-channel-blocked layout and planar channels `stride` floats apart:
/// every element lands where the layout says (blocked[(c / 16)·positions·16 + p·16 + c % 16] =
/// planar[c·stride + p]), the padding lanes of a partial last block come out zero, and the AVX-512
/// and plain versions agree.
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
}
