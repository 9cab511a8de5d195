import CKernels
import Kernels
import Testing

/// The direct stride-1 convolution kernels (AVX-512 where the CPU has it, plain C otherwise) against
/// the reference convolution in Double: ragged widths around the 16- and 64-column vectors, padding
/// on both sides, kernels from 1x1 to 5x5 and output channels in partial groups of four.
@Suite("Direct convolution kernels")
struct DirectConvolutionTests {
    /// (input channels, output channels, height, width, kernel height, kernel width, padding rows, padding columns)
    typealias Shape = (Int, Int, Int, Int, Int, Int, Int, Int)
    static let shapes: [Shape] = [
        (16, 3, 9, 37, 3, 3, 1, 1), (5, 4, 7, 70, 4, 4, 2, 1), (2, 1, 3, 130, 1, 1, 0, 0), (3, 6, 6, 5, 5, 5, 4, 2),
        (1, 2, 11, 64, 3, 1, 1, 0), (4, 3, 5, 17, 2, 5, 0, 4),
    ]

    func geometry(_ shape: Shape) throws -> Conv2DGeometry {
        let (cin, cout, h, w, kh, kw, ph, pw) = shape
        return try Conv2DGeometry(
            batch: 1, inChannels: cin, outChannels: cout, inHeight: h, inWidth: w,
            kernelHeight: kh, kernelWidth: kw, stride: 1, paddingHeight: ph, paddingWidth: pw)
    }

    @Test(arguments: shapes)
    func matchesTheReference(_ shape: Shape) throws {
        let (cin, cout, h, w, kh, kw, ph, pw) = shape
        let g = try geometry(shape)
        var random = TestRandom(seed: UInt64(cin * 100 + w))
        let x = random.doubles(ShapeMath.count(g.inputShape))
        let weight = random.doubles(ShapeMath.count(g.weightShape))
        let bias = random.doubles(cout)
        let dy = random.doubles(ShapeMath.count(g.outputShape))
        var y = [Double](repeating: 0, count: dy.count)
        ReferenceKernels.conv2dForward(g, y: &y, x: x, w: weight, b: bias)
        var dw = [Double](repeating: 0, count: weight.count)
        var db = [Double](repeating: 0, count: cout)
        ReferenceKernels.conv2dBackwardWeights(g, dw: &dw, db: &db, dy: dy, x: x)
        var convolution = sagan_direct_convolution(
            inputChannels: cin, height: h, width: w, inputChannelStride: h * w,
            outputChannels: cout, outputHeight: g.outHeight, outputWidth: g.outWidth,
            outputChannelStride: g.outHeight * g.outWidth, kernelHeight: kh,
            kernelWidth: kw, padHeight: ph, padWidth: pw)
        let (xf, wf, bf, dyf) = (x.map(Float.init), weight.map(Float.init), bias.map(Float.init), dy.map(Float.init))
        for (name, forward, weightGradient) in [
            ("dispatched", sagan_direct_convolution_forward, sagan_direct_convolution_weight_gradient),
            (
                "portable", sagan_direct_convolution_forward_portable,
                sagan_direct_convolution_weight_gradient_portable
            ),
        ] {
            var output = [Float](repeating: .nan, count: y.count)
            forward(&convolution, xf, wf, bf, &output)
            var weightOut = [Float](repeating: .nan, count: dw.count)
            var biasOut = [Float](repeating: .nan, count: cout)
            weightGradient(&convolution, xf, dyf, &weightOut, &biasOut)
            let worstY = zip(output, y).map { abs(Double($0) - $1) }.max()!
            let worstW = zip(weightOut, dw).map { abs(Double($0) - $1) }.max()!
            let worstB = zip(biasOut, db).map { abs(Double($0) - $1) }.max()!
            #expect(
                worstY < 1e-4 && worstW < 1e-3 && worstB < 1e-3,
                "\(name) \(shape): y off by \(worstY), dw by \(worstW), db by \(worstB)")
        }
    }

    /// The bf16 kernels (channel pairs on vdpbf16ps forward, neighbouring columns paired in the weight
    /// gradient) against the Float32 kernels on the same bf16 values: products are exact in Float32 either
    /// way, so only the order of the sums differs. Odd channel counts leave a pair half empty; planes
    /// lie an odd number of elements apart.
    @Test(
        .enabled(if: sagan_kernels_use_avx512_bf16() != 0, "the bf16 kernels need AVX512_BF16"),
        arguments: shapes + [(3, 16, 12, 128, 3, 3, 1, 1)])
    func bf16KernelsMatchFloat32(_ shape: Shape) throws {
        let (cin, cout, h, w, kh, kw, ph, pw) = shape
        let g = try geometry(shape)
        var random = TestRandom(seed: UInt64(cin * 10 + w))
        let rounded = { (count: Int) in random.floats(count).map(BFloat16.round) }
        let (x, weight, bias, dy) = (
            rounded(ShapeMath.count(g.inputShape)), rounded(ShapeMath.count(g.weightShape)), rounded(cout),
            rounded(ShapeMath.count(g.outputShape))
        )
        let outputPlane = g.outHeight * g.outWidth
        var convolution = sagan_direct_convolution(
            inputChannels: cin, height: h, width: w, inputChannelStride: h * w, outputChannels: cout,
            outputHeight: g.outHeight, outputWidth: g.outWidth, outputChannelStride: outputPlane,
            kernelHeight: kh, kernelWidth: kw, padHeight: ph, padWidth: pw)
        var (y32, dw32, db32) = (
            [Float](repeating: .nan, count: dy.count), [Float](repeating: .nan, count: weight.count),
            [Float](repeating: .nan, count: cout)
        )
        sagan_direct_convolution_forward(&convolution, x, weight, bias, &y32)
        sagan_direct_convolution_weight_gradient(&convolution, x, dy, &dw32, &db32)

        func half(_ value: Float) -> UInt32 { value.bitPattern >> 16 }
        let pairs = (cin + 1) / 2
        let pairStride = h * w + 3
        var xPairs = [UInt32](repeating: 0xFFFF_FFFF, count: pairs * pairStride)
        for p in 0..<pairs {
            for position in 0..<h * w {
                let high = 2 * p + 1 < cin ? half(x[(2 * p + 1) * h * w + position]) : 0
                xPairs[p * pairStride + position] = half(x[2 * p * h * w + position]) | high << 16
            }
        }
        let taps = kh * kw
        var weightPairs = [UInt32](repeating: 0, count: cout * pairs * taps)
        for o in 0..<cout {
            for p in 0..<pairs {
                for t in 0..<taps {
                    let high = 2 * p + 1 < cin ? half(weight[(o * cin + 2 * p + 1) * taps + t]) : 0
                    weightPairs[(o * pairs + p) * taps + t] = half(weight[(o * cin + 2 * p) * taps + t]) | high << 16
                }
            }
        }
        var pairConvolution = convolution
        pairConvolution.inputChannelStride = pairStride
        var y16 = [Float](repeating: .nan, count: dy.count)
        sagan_direct_convolution_forward_bf16(&pairConvolution, xPairs, weightPairs, bias, &y16)

        let planeStride = h * w + 5
        var xHalves = [UInt16](repeating: 0xFFFF, count: cin * planeStride)
        for c in 0..<cin {
            for position in 0..<h * w { xHalves[c * planeStride + position] = UInt16(half(x[c * h * w + position])) }
        }
        var planeConvolution = convolution
        planeConvolution.inputChannelStride = planeStride
        var (dw16, db16) = ([Float](repeating: .nan, count: weight.count), [Float](repeating: .nan, count: cout))
        sagan_direct_convolution_weight_gradient_bf16(
            &planeConvolution, xHalves, dy.map { UInt16(half($0)) }, &dw16, &db16)

        func worst(_ a: [Float], _ b: [Float]) -> Float {
            let scale = max(1, b.map { Swift.abs($0) }.max() ?? 0)
            return zip(a, b).map { Swift.abs($0 - $1) }.max()! / scale
        }
        let (worstY, worstW, worstB) = (worst(y16, y32), worst(dw16, dw32), worst(db16, db32))
        #expect(
            worstY < 1e-5 && worstW < 1e-5 && worstB < 1e-5,
            "\(shape): y off by \(worstY), dw by \(worstW), db by \(worstB) of their scale")
    }
}
