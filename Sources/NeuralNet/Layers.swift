import Autodiff

/// y = x Wᵀ + b. x (N, in) → (N, out); weight (out, in) as in PyTorch.
public final class Linear: Module {
    public var isTraining = true
    public let weight: Parameter
    public let bias: Parameter?

    public init(inputs: Int, outputs: Int, bias: Bool = true, initializer: WeightInitializer = .pytorchDefault,
                generator: inout RandomGenerator) {
        weight = Parameter(initializer.make([outputs, inputs], fanIn: inputs, fanOut: outputs, generator: &generator))
        self.bias = bias ? Parameter(.zeros([outputs])) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { .linear(x, weight: weight.value, bias: bias?.value) }
}

/// 2-D convolution. x (N, in, H, W) → (N, out, Ho, Wo); weight (out, in, k, k).
public final class Conv2d: Module {
    public var isTraining = true
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Int

    public init(inputs: Int, outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
                initializer: WeightInitializer = .pytorchDefault, generator: inout RandomGenerator) {
        weight = Parameter(initializer.make([outputs, inputs, kernel, kernel], fanIn: inputs * kernel * kernel,
                                            fanOut: outputs * kernel * kernel, generator: &generator))
        self.bias = bias ? Parameter(.zeros([outputs])) : nil
        self.stride = stride
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        .conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding)
    }
}

/// Transposed 2-D convolution (upsampling). x (N, in, H, W) → (N, out, Ho, Wo) with
/// Ho = (H − 1)·stride − 2·padding + kernel + outputPadding; weight (in, out, k, k) as in PyTorch.
public final class ConvTranspose2d: Module {
    public var isTraining = true
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int

    public init(inputs: Int, outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
                bias: Bool = true, initializer: WeightInitializer = .pytorchDefault, generator: inout RandomGenerator) {
        // PyTorch computes the fans of a transposed conv from its (in, out, k, k) weight as if it were a conv.
        weight = Parameter(initializer.make([inputs, outputs, kernel, kernel], fanIn: outputs * kernel * kernel,
                                            fanOut: inputs * kernel * kernel, generator: &generator))
        self.bias = bias ? Parameter(.zeros([outputs])) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        .convTranspose2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, outputPadding: outputPadding)
    }
}

/// Batch normalisation per channel of (N, C, H, W) or (N, C) input.
///
/// Training mode normalises with the batch's statistics and moves the running statistics toward
/// them (running = (1 − momentum)·running + momentum·batch, with the unbiased batch variance, as
/// PyTorch does); evaluation mode normalises with the running statistics.
public final class BatchNorm2d: Module {
    /// Which learned affine terms follow the normalisation.
    public enum Affine: String, Codable, Sendable {
        /// γ and β (PyTorch's default).
        case scaleAndShift
        /// β only: Keras `scale=False`, as in the article's generator.
        case shiftOnly
        case none
    }

    public var isTraining = true
    public let scale: Parameter?
    public let shift: Parameter?
    public let runningMean: Buffer
    public let runningVariance: Buffer
    public let momentum: Float
    public let epsilon: Float

    public init(channels: Int, affine: Affine = .scaleAndShift, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        scale = affine == .scaleAndShift ? Parameter(.ones([channels])) : nil
        shift = affine == .none ? nil : Parameter(.zeros([channels]))
        runningMean = Buffer(.zeros([channels]))
        runningVariance = Buffer(.ones([channels]))
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining else {
            return .batchNormInference(x, mean: runningMean.value, variance: runningVariance.value,
                                       scale: scale?.value, shift: shift?.value, epsilon: epsilon)
        }
        let (output, mean, variance) = Tensor.batchNormTraining(x, scale: scale?.value, shift: shift?.value, epsilon: epsilon)
        let reduced = Float(x.count / x.shape[1])
        noGrad {
            let unbiased = variance * (reduced / max(reduced - 1, 1))
            runningMean.assign(runningMean.value * (1 - momentum) + mean * momentum)
            runningVariance.assign(runningVariance.value * (1 - momentum) + unbiased * momentum)
        }
        return output
    }
}
