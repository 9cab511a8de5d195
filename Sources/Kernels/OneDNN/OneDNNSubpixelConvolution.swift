import CKernels

/// The input gradient of a 4x4 stride-2 convolution with padding 1 and at most four input channels
/// (a discriminator's RGB input layer) as four stride-1 2x2 convolutions of dy on our direct
/// kernels, one per parity of dx's rows and columns: oneDNN pads such a dx to a block of 16
/// channels and computes all 16 (blog128's 3 → 32 layer at 128x128: 35 GFLOP/s in Float32, 51 in
/// bf16, on a Zen 4).
///
/// dx[c, 2a + py, 2b + px] sums dy[o, a + (py + 1 − ky) / 2, ·] · w[o, c, ky, ·] over the two ky of
/// dx's row parity py (ky = 3 − py − 2t, t = 0, 1, reading dy rows a − 1 + py + t), and likewise
/// for the columns: a 2x2 correlation of dy padded by 1 − py above and 1 − px on the left, with
/// dy's own size (the direct kernels take what lies past dy's edge as zero).
extension OneDNNBackend {
    /// On AVX-512 only, as `usesDirectConvolution`.
    func usesSubpixelBackwardData(_ g: Conv2DGeometry) -> Bool {
        g.stride == 2 && g.kernelHeight == 4 && g.kernelWidth == 4 && g.paddingHeight == 1 && g.paddingWidth == 1
            && g.inChannels <= 4 && g.inHeight == 2 * g.outHeight && g.inWidth == 2 * g.outWidth
            && sagan_kernels_use_avx512() != 0
    }

    /// dx row-major (B, C, H, W), Float32 (the caller rounds it under bf16).
    func subpixelBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        let bf16 = usesBF16Kernels(g)
        let (outputs, inputs) = (g.outChannels, g.inChannels)
        let w = operand(weight, g.precision)  // (O, C, 4, 4)
        // Per phase, the 2x2 kernel (C, O, 2, 2): input channels of dx as outputs, dy's as inputs.
        let phases = (0..<4).map { phase -> Storage in
            let (py, px) = (phase / 2, phase % 2)
            let kernel = Storage(uninitializedCount: inputs * outputs * 4)
            for c in 0..<inputs {
                for o in 0..<outputs {
                    for t in 0..<4 {
                        let (ky, kx) = (3 - py - 2 * (t / 2), 3 - px - 2 * (t % 2))
                        kernel.pointer[(c * outputs + o) * 4 + t] = w.pointer[((o * inputs + c) * 4 + ky) * 4 + kx]
                    }
                }
            }
            return bf16 ? pairedChannels(kernel, outputs: inputs, inputs: outputs, taps: 4) : kernel
        }
        let dy = ImageOperand(outputGradient, g.outputShape)
        let plane = paddedPlane(g.outHeight, g.outWidth)
        let phasePlane = g.outHeight * g.outWidth
        let convolutions = (0..<4).map { phase in
            sagan_direct_convolution(
                inputChannels: outputs, height: g.outHeight, width: g.outWidth, inputChannelStride: plane,
                outputChannels: inputs, outputHeight: g.outHeight, outputWidth: g.outWidth,
                outputChannelStride: phasePlane, kernelHeight: 2, kernelWidth: 2, padHeight: 1 - phase / 2,
                padWidth: 1 - phase % 2)
        }
        let dx = Storage(uninitializedCount: ShapeMath.count(g.inputShape))
        let (imageFloats, pairFloats) = (outputs * plane, bf16 ? (outputs + 1) / 2 * plane : 0)
        let (resultFloats, dxImage) = (inputs * phasePlane, inputs * g.inHeight * g.inWidth)
        let scratch = imageFloats + pairFloats + resultFloats
        let work = workerScratch(g, floats: scratch)
        let roundsInput = needsRounding(outputGradient, g.precision)
        withExtendedLifetime((dy, phases, work)) {
            runtime.forEachItemInParallel(g.batch) { n, worker, stream in
                let image = work.pointer + worker * scratch
                let (pairs, result) = (bf16Pairs(image + imageFloats), image + imageFloats + pairFloats)
                if bf16 {
                    dy.gatherPairs(
                        image: n, into: pairs, pairStride: plane, scratch: image, rounding: roundsInput, runtime,
                        stream)
                } else {  // Float32 kernels, on rounded values under bf16 without AVX512_BF16
                    dy.gather(image: n, into: image, channelStride: plane, runtime, stream)
                    if roundsInput { sagan_round_bf16(image, imageFloats) }
                }
                for (phase, kernel) in phases.enumerated() {
                    var convolution = convolutions[phase]
                    if bf16 {
                        sagan_direct_convolution_forward_bf16(
                            &convolution, pairs, bf16Pairs(kernel.pointer), nil, result)
                    } else {
                        sagan_direct_convolution_forward(&convolution, image, kernel.pointer, nil, result)
                    }
                    sagan_interleave_phase(
                        result, inputs, g.outHeight, g.outWidth, g.outWidth, phasePlane,
                        dx.pointer + n * dxImage + phase / 2 * g.inWidth + phase % 2, g.inWidth, g.inHeight * g.inWidth)
                }
            }
        }
        return dx
    }
}
