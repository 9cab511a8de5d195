import CDNNL
import CKernels

/// Stride-1 convolutions with at most four output channels (a generator's RGB output layer) run
/// on our direct kernels, one image per worker: oneDNN pads such outputs to a block of 16 channels,
/// computes all 16 and then reorders the padded result, at about a tenth of the machine's peak.
/// Images move between their layouts and planar scratch whose channels are padded apart (see
/// `sagan_direct_convolution`); outputs and row-major gradients are read and written in place.
extension OneDNNBackend {
    func usesDirectConvolution(_ g: Conv2DGeometry) -> Bool {
        g.stride == 1 && g.outChannels <= 4 && g.paddingHeight < g.kernelHeight && g.paddingWidth < g.kernelWidth
    }

    /// Floats from one channel of a planar scratch image to the next: a 64-byte step off any
    /// multiple of 4 KiB.
    private func paddedPlane(_ height: Int, _ width: Int) -> Int { height * width + 16 }

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
    private func needsRounding(_ input: Storage, _ precision: Precision) -> Bool {
        precision == .bf16 && input.precision != .bf16
    }

    /// Scratch of `floats` per worker.
    private func workerScratch(_ g: Conv2DGeometry, floats: Int) -> Storage {
        Storage(uninitializedCount: min(g.batch, threadCount ?? 1) * floats)
    }

    /// The output is row-major (B, Cout, Ho, Wo).
    func directConvolutionForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
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
        var float32 = g  // dx is Float32, in the layout a Float32 convolution would read x in
        float32.precision = .fp32
        let dx = ImageOperand(
            output: g.inputShape,
            layout: runtime.layout(
                g.inputShape, convolutionForwardPrimitive(float32, bias: false).layout(of: DNNL_ARG_SRC)))
        let (gradientFloats, resultFloats) = (
            g.outChannels * g.outHeight * g.outWidth, g.inChannels * convolution.outputChannelStride
        )
        let work = workerScratch(g, floats: resultFloats)
        withExtendedLifetime((dy, dx, flipped, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let result = work.pointer + worker * resultFloats
                sagan_direct_convolution_forward(
                    &convolution, dy.pointer + n * gradientFloats, flipped.pointer, nil, result)
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
        let work = workerScratch(g, floats: imageFloats)
        let roundsInput = needsRounding(input, g.precision)
        withExtendedLifetime((x, dy, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let image = work.pointer + worker * imageFloats
                x.gather(image: n, into: image, channelStride: convolution.inputChannelStride, runtime, stream)
                if roundsInput { sagan_round_bf16(image, imageFloats) }
                let weightPartial = partials.pointer + n * (weightCount + g.outChannels)
                sagan_direct_convolution_weight_gradient(
                    &convolution, image, dy.pointer + n * gradientFloats, weightPartial,
                    withBias ? weightPartial + weightCount : nil)
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
