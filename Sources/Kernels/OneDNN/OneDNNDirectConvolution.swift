import CDNNL
import CKernels

/// Stride-1 convolutions with at most four output channels (a generator's RGB output layer) run
/// on our direct kernels, one image per worker: oneDNN pads such outputs to a block of 16 channels,
/// computes all 16 and then reorders the padded result, at about a tenth of the machine's peak.
/// Images move between their layouts and planar scratch whose channels are padded apart (see
/// `sagan_direct_convolution`); outputs and row-major gradients are read and written in place.
/// Under bf16 with AVX512_BF16 the kernels take bf16 operands, two channels (or columns) per
/// vdpbf16ps: the RGB layer's forward 112 → 215 GFLOP/s in training on a Zen 4.
extension OneDNNBackend {
    /// On AVX-512 only: the plain C fallback runs at about 1 GFLOP/s, far below oneDNN's AVX2 kernels
    /// even for these shapes (the sub-pixel 3 → 32 input gradient: oneDNN's AVX2 kernel 48 GFLOP/s on
    /// a Zen 4 limited to AVX2, the plain direct kernels 1).
    func usesDirectConvolution(_ g: Conv2DGeometry) -> Bool {
        g.stride == 1 && g.outChannels <= 4 && g.paddingHeight < g.kernelHeight && g.paddingWidth < g.kernelWidth
            && sagan_kernels_use_avx512() != 0
    }

    /// Floats from one channel of a planar scratch image to the next: a 64-byte step off any
    /// multiple of 4 KiB.
    func paddedPlane(_ height: Int, _ width: Int) -> Int { height * width + 16 }

    private func description(_ g: Conv2DGeometry) -> sagan_direct_convolution {
        sagan_direct_convolution(
            inputChannels: g.inChannels, height: g.inHeight, width: g.inWidth,
            inputChannelStride: paddedPlane(g.inHeight, g.inWidth), outputChannels: g.outChannels,
            outputHeight: g.outHeight, outputWidth: g.outWidth, outputChannelStride: g.outHeight * g.outWidth,
            kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth, padHeight: g.paddingHeight,
            padWidth: g.paddingWidth)
    }

    /// Whether a bf16 convolution must round its input: not when it holds bf16 values already (an
    /// activation), which rounding would leave as they are.
    func needsRounding(_ input: Storage, _ precision: Precision) -> Bool {
        precision == .bf16 && input.precision != .bf16
    }

    /// Scratch of `floats` per worker.
    func workerScratch(_ g: Conv2DGeometry, floats: Int) -> Storage {
        Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * floats)
    }

    /// Whether bf16 convolutions run on our bf16 kernels (vdpbf16ps); without AVX512_BF16 the Float32
    /// kernels compute the same products from rounded operands.
    func usesBF16Kernels(_ g: Conv2DGeometry) -> Bool {
        g.precision == .bf16 && sagan_kernels_use_avx512_bf16() != 0
    }

    /// `weight` (outputs, inputs, taps) rounded to bf16 (as every bf16 convolution reads it), its
    /// inputs in pairs: the weight operand of sagan_direct_convolution_forward_bf16.
    private func pairedWeights(_ weight: Storage, outputs: Int, inputs: Int, taps: Int) -> Storage {
        pairedChannels(operand(weight, .bf16), outputs: outputs, inputs: inputs, taps: taps)
    }

    /// Weights (outputs, inputs, taps) that hold bf16 values, their inputs in pairs.
    func pairedChannels(_ w: Storage, outputs: Int, inputs: Int, taps: Int) -> Storage {
        let pairs = (inputs + 1) / 2
        let paired = Storage(uninitializedCount: outputs * pairs * taps)
        withExtendedLifetime(w) {
            for o in 0..<outputs {
                sagan_pair_bf16_channels(
                    w.pointer + o * inputs * taps, inputs, taps, taps, bf16Pairs(paired.pointer + o * pairs * taps),
                    taps)
            }
        }
        return paired
    }

    /// The output is row-major (B, Cout, Ho, Wo).
    func directConvolutionForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
        if usesBF16Kernels(g) { return directConvolutionForwardBF16(g, input: input, weight: weight, bias: bias) }
        var convolution = description(g)
        let x = ImageOperand(input, g.inputShape)
        let w = operand(weight, g.precision)
        let b = bias.map(plain)
        let y = Storage(uninitializedCount: ShapeMath.count(g.outputShape))
        let (imageFloats, outputFloats) = (
            g.inChannels * convolution.inputChannelStride, g.outChannels * g.outHeight * g.outWidth
        )
        let work = workerScratch(g, floats: imageFloats)
        let roundsInput = needsRounding(input, g.precision)
        withExtendedLifetime((x, w, b, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let image = work.pointer + worker * imageFloats
                x.gather(image: n, into: image, channelStride: convolution.inputChannelStride, runtime, stream)
                if roundsInput { sagan_round_bf16(image, imageFloats) }
                sagan_direct_convolution_forward(
                    &convolution, image, w.pointer, b?.pointer, y.pointer + n * outputFloats)
            }
        }
        return y
    }

    /// The forward on bf16 kernels: each image's channels in pairs, straight from a bf16 activation's
    /// blocks (otherwise gathered planar, rounded unless bf16 already, and paired).
    private func directConvolutionForwardBF16(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?)
        -> Storage
    {
        var convolution = description(g)
        let plane = convolution.inputChannelStride
        let x = ImageOperand(input, g.inputShape)
        let w = pairedWeights(
            weight, outputs: g.outChannels, inputs: g.inChannels, taps: g.kernelHeight * g.kernelWidth)
        let b = bias.map(plain)
        let y = Storage(uninitializedCount: ShapeMath.count(g.outputShape))
        let (imageFloats, pairFloats) = (g.inChannels * plane, (g.inChannels + 1) / 2 * plane)
        let outputFloats = g.outChannels * g.outHeight * g.outWidth
        let work = workerScratch(g, floats: imageFloats + pairFloats)
        let roundsInput = needsRounding(input, g.precision)
        withExtendedLifetime((x, w, b, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let image = work.pointer + worker * (imageFloats + pairFloats)
                let pairs = bf16Pairs(image + imageFloats)
                x.gatherPairs(
                    image: n, into: pairs, pairStride: plane, scratch: image, rounding: roundsInput, runtime, stream)
                sagan_direct_convolution_forward_bf16(
                    &convolution, pairs, bf16Pairs(w.pointer), b?.pointer, y.pointer + n * outputFloats)
            }
        }
        return y
    }

    /// dx is the forward of dy with the kernel flipped and its channel axes swapped, padded by
    /// k − 1 − padding; it comes out in the layout oneDNN's convolution would read x in.
    func directConvolutionBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        var convolution = sagan_direct_convolution(
            inputChannels: g.outChannels, height: g.outHeight, width: g.outWidth,
            inputChannelStride: g.outHeight * g.outWidth,
            outputChannels: g.inChannels, outputHeight: g.inHeight, outputWidth: g.inWidth,
            outputChannelStride: paddedPlane(g.inHeight, g.inWidth), kernelHeight: g.kernelHeight,
            kernelWidth: g.kernelWidth,
            padHeight: g.kernelHeight - 1 - g.paddingHeight, padWidth: g.kernelWidth - 1 - g.paddingWidth)
        let w = operand(weight, g.precision)
        let flipped = Storage(uninitializedCount: w.count)  // (Cin, Cout, kh, kw)
        let bf16 = usesBF16Kernels(g)
        let (kh, kw) = (g.kernelHeight, g.kernelWidth)
        for o in 0..<g.outChannels {
            for i in 0..<g.inChannels {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        flipped.pointer[((i * g.outChannels + o) * kh + kh - 1 - ky) * kw + kw - 1 - kx] =
                            w.pointer[((o * g.inChannels + i) * kh + ky) * kw + kx]
                    }
                }
            }
        }
        let dy = operand(outputGradient, g.precision)
        // dx in the layout a convolution of this precision would read x in: bf16 under the bf16
        // kernels (rounded as it is scattered), otherwise Float32 (rounded by the caller under bf16).
        var reader = g
        reader.precision = bf16 ? .bf16 : .fp32
        let dx = ImageOperand(
            output: g.inputShape,
            layout: runtime.layout(
                g.inputShape, convolutionForwardPrimitive(reader, bias: false).layout(of: DNNL_ARG_SRC)))
        let taps = kh * kw
        let pairedFlipped =
            bf16 ? pairedChannels(flipped, outputs: g.inChannels, inputs: g.outChannels, taps: taps) : nil
        let gradientFloats = g.outChannels * g.outHeight * g.outWidth
        let (resultFloats, pairFloats) = (
            g.inChannels * convolution.outputChannelStride,
            bf16 ? (g.outChannels + 1) / 2 * g.outHeight * g.outWidth : 0
        )
        let work = workerScratch(g, floats: resultFloats + pairFloats)
        withExtendedLifetime((dy, dx, flipped, pairedFlipped, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let result = work.pointer + worker * (resultFloats + pairFloats)
                if let pairedFlipped {
                    let pairs = bf16Pairs(result + resultFloats)
                    let plane = g.outHeight * g.outWidth
                    sagan_pair_bf16_channels(dy.pointer + n * gradientFloats, g.outChannels, plane, plane, pairs, plane)
                    sagan_direct_convolution_forward_bf16(
                        &convolution, pairs, bf16Pairs(pairedFlipped.pointer), nil, result)
                } else {
                    sagan_direct_convolution_forward(
                        &convolution, dy.pointer + n * gradientFloats, flipped.pointer, nil, result)
                }
                dx.scatter(image: n, from: result, channelStride: convolution.outputChannelStride, runtime, stream)
            }
        }
        return dx.storage
    }

    /// Per-image gradients summed in image order, so the result does not depend on the threads.
    func directConvolutionBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    {
        var convolution = description(g)
        let x = ImageOperand(input, g.inputShape)
        let dy = operand(outputGradient, g.precision)
        let weightCount = ShapeMath.count(g.weightShape)
        let partials = Storage(uninitializedCount: g.batch * (weightCount + g.outChannels))
        let (imageFloats, gradientFloats) = (
            g.inChannels * convolution.inputChannelStride, g.outChannels * g.outHeight * g.outWidth
        )
        // Under the bf16 kernels: the image's x and dy as 16-bit bf16 in each worker's scratch, after x's Float32.
        let bf16 = usesBF16Kernels(g)
        let halfFloats = bf16 ? (imageFloats + 1) / 2 + (gradientFloats + 1) / 2 : 0
        let work = workerScratch(g, floats: imageFloats + halfFloats)
        let roundsInput = needsRounding(input, g.precision)
        withExtendedLifetime((x, dy, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let image = work.pointer + worker * (imageFloats + halfFloats)
                x.gather(image: n, into: image, channelStride: convolution.inputChannelStride, runtime, stream)
                if roundsInput { sagan_round_bf16(image, imageFloats) }
                let weightPartial = partials.pointer + n * (weightCount + g.outChannels)
                let biasPartial = withBias ? weightPartial + weightCount : nil
                if bf16 {
                    let halves = bf16Halves(image + imageFloats)
                    let gradientHalves = halves + imageFloats
                    sagan_bf16_halves(image, imageFloats, halves)
                    sagan_bf16_halves(dy.pointer + n * gradientFloats, gradientFloats, gradientHalves)
                    sagan_direct_convolution_weight_gradient_bf16(
                        &convolution, halves, gradientHalves, weightPartial, biasPartial)
                } else {
                    sagan_direct_convolution_weight_gradient(
                        &convolution, image, dy.pointer + n * gradientFloats, weightPartial, biasPartial)
                }
            }
        }
        let dw = Storage(zeros: weightCount)
        let db = withBias ? Storage(zeros: g.outChannels) : nil
        for n in 0..<g.batch {
            let partial = partials.pointer + n * (weightCount + g.outChannels)
            for j in 0..<weightCount { dw.pointer[j] += partial[j] }
            if let db { for o in 0..<g.outChannels { db.pointer[o] += partial[weightCount + o] } }
        }
        return (dw, db)
    }
}
