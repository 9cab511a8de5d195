import FileFormats
import Kernels

// Convolution and transposed convolution over NCHW tensors.

extension Tensor {
    /// 2-D convolution: input (N, Cin, H, W), weight (Cout, Cin, kh, kw), bias (Cout) → (N, Cout, Ho, Wo)
    /// with Ho = (H + 2·padding − kh) / stride + 1.
    public static func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0)
        -> Tensor
    {
        conv2d(input, weight: weight, bias: bias, stride: stride, padding: (padding, padding))
    }

    /// 2-D convolution with its own zero padding for rows and for columns:
    /// Ho = (H + 2·padding.height − kh) / stride + 1, Wo = (W + 2·padding.width − kw) / stride + 1.
    public static func conv2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1,
        padding: (height: Int, width: Int)
    ) -> Tensor {
        require(
            input.rank == 4 && weight.rank == 4,
            "conv2d: input must be (N, C, H, W) and weight (Cout, Cin, kh, kw); got \(input.shape) and \(weight.shape)")
        require(
            input.shape[1] == weight.shape[1],
            "conv2d: input has \(input.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[1])")
        require(
            bias == nil || bias!.shape == [weight.shape[0]],
            "conv2d: bias shape \(bias?.shape ?? []) does not match \(weight.shape[0]) output channels")
        var g = validated {
            try Conv2DGeometry(
                batch: input.shape[0], inChannels: input.shape[1], outChannels: weight.shape[0],
                inHeight: input.shape[2], inWidth: input.shape[3], kernelHeight: weight.shape[2],
                kernelWidth: weight.shape[3], stride: stride, paddingHeight: padding.height, paddingWidth: padding.width
            )
        }
        g.precision = EngineContext.precision
        let backend = EngineContext.backend
        let x = input.storage
        let w = weight.storage
        let output = ResultPrecision.product(
            backend.conv2dForward(g, input: x, weight: w, bias: bias?.storage), g.precision)
        let inputs = [input, weight] + (bias.map { [$0] } ?? [])
        return record("conv2d", shape: g.outputShape, storage: output, inputs: inputs) { gradient, wanted in
            let dx =
                wanted[0]
                ? ResultPrecision.product(
                    backend.conv2dBackwardData(g, outputGradient: gradient.storage, weight: w), g.precision) : nil
            let wantsBias = wanted.count > 2 && wanted[2]
            let parameters =
                wanted[1] || wantsBias
                ? backend.conv2dBackwardWeights(g, outputGradient: gradient.storage, input: x, withBias: wantsBias)
                : nil
            return [
                dx.map { Tensor(shape: g.inputShape, storage: $0) },
                wanted[1] ? parameters.map { Tensor(shape: g.weightShape, storage: $0.weight) } : nil,
                parameters?.bias.map { Tensor(shape: [g.outChannels], storage: $0) },
            ]
        }
    }

    /// Transposed convolution (the data gradient of a convolution): input (N, Cin, H, W), weight
    /// (Cin, Cout, kh, kw) as in PyTorch, bias (Cout) → (N, Cout, Ho, Wo) with
    /// Ho = (H − 1)·stride − 2·padding + kh + outputPadding.
    public static func convTranspose2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0
    ) -> Tensor {
        require(
            input.rank == 4 && weight.rank == 4,
            "convTranspose2d: input must be (N, C, H, W) and weight (Cin, Cout, kh, kw); got \(input.shape) and "
                + "\(weight.shape)"
        )
        require(
            input.shape[1] == weight.shape[0],
            "convTranspose2d: input has \(input.shape[1]) channels but weight \(weight.shape) expects "
                + "\(weight.shape[0])"
        )
        require(
            bias == nil || bias!.shape == [weight.shape[1]],
            "convTranspose2d: bias shape \(bias?.shape ?? []) does not match \(weight.shape[1]) output channels")
        require(
            outputPadding >= 0 && outputPadding < max(stride, 1),
            "convTranspose2d: output padding \(outputPadding) must be in 0..<stride (\(stride))")
        let outHeight = (input.shape[2] - 1) * stride - 2 * padding + weight.shape[2] + outputPadding
        let outWidth = (input.shape[3] - 1) * stride - 2 * padding + weight.shape[3] + outputPadding
        require(
            outHeight > 0 && outWidth > 0,
            "convTranspose2d: input \(input.shape), weight \(weight.shape), stride \(stride), padding \(padding) give "
                + "an empty output"
        )
        // The convolution that maps this op's output back to its input.
        var g = validated {
            try Conv2DGeometry(
                batch: input.shape[0], inChannels: weight.shape[1], outChannels: weight.shape[0],
                inHeight: outHeight, inWidth: outWidth, kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
                stride: stride, padding: padding)
        }
        g.precision = EngineContext.precision
        require(
            g.outHeight == input.shape[2] && g.outWidth == input.shape[3],
            "convTranspose2d: input \(input.shape) is inconsistent with stride \(stride), padding \(padding), kernel "
                + "\(weight.shape)"
        )
        let backend = EngineContext.backend
        let x = input.storage
        let w = weight.storage
        var result = record(
            "convTranspose2d", shape: g.inputShape,
            storage: ResultPrecision.product(backend.conv2dBackwardData(g, outputGradient: x, weight: w), g.precision),
            inputs: [input, weight]
        ) { gradient, wanted in
            [
                wanted[0]
                    ? Tensor(
                        shape: g.outputShape,
                        storage: ResultPrecision.product(
                            backend.conv2dForward(g, input: gradient.storage, weight: w, bias: nil), g.precision)
                    ) : nil,
                wanted[1]
                    ? Tensor(
                        shape: g.weightShape,
                        storage: backend.conv2dBackwardWeights(
                            g, outputGradient: x, input: gradient.storage, withBias: false
                        ).weight) : nil,
            ]
        }
        if let bias { result = result + bias.reshaped(to: [1, bias.count, 1, 1]) }
        return result
    }
}
