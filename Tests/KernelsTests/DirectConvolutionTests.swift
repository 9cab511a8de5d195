import CKernels
import Kernels
import Testing

/// The direct stride-1 convolution kernels (AVX-512 where the CPU has it, plain C otherwise) against
/// the reference convolution in Double: ragged widths around the 16- and 64-column vectors, padding
/// on both sides, kernels from 1x1 to 5x5 and output channels in partial groups of four.
@Suite("Direct convolution kernels")
struct DirectConvolutionTests {
    /// (input channels, output channels, height, width, kernel height, kernel width, padding rows, padding columns)
    @Test(arguments: [
        (16, 3, 9, 37, 3, 3, 1, 1), (5, 4, 7, 70, 4, 4, 2, 1), (2, 1, 3, 130, 1, 1, 0, 0), (3, 6, 6, 5, 5, 5, 4, 2),
        (1, 2, 11, 64, 3, 1, 1, 0), (4, 3, 5, 17, 2, 5, 0, 4),
    ])
    func matchesTheReference(_ shape: (Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let (cin, cout, h, w, kh, kw, ph, pw) = shape
        let g = try Conv2DGeometry(
            batch: 1, inChannels: cin, outChannels: cout, inHeight: h, inWidth: w,
            kernelHeight: kh, kernelWidth: kw, stride: 1, paddingHeight: ph, paddingWidth: pw)
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
}
