import Autodiff

/// The spectral-normalisation state a weight layer carries when normalised: u and v as buffers
/// named `weight_u` and `weight_v` (PyTorch's names), and the σ of the last forward for logging.
public final class SpectralNormState: StateGroup, @unchecked Sendable {
    public let normalizer: SpectralNormalizer
    public let u: Buffer
    public let v: Buffer
    /// σ from the most recent forward pass.
    public private(set) var lastSigma: Float?

    init(weight: Tensor, outputAxis: Int, generator: inout RandomGenerator) {
        normalizer = SpectralNormalizer(outputAxis: outputAxis)
        let (u, v) = normalizer.initialVectors(for: weight, generator: &generator)
        self.u = Buffer(u)
        self.v = Buffer(v)
    }

    /// The state of a layer made with `spectralNorm: enabled`: nil when it is not normalised.
    static func make(
        _ enabled: Bool, weight: Tensor, outputAxis: Int, generator: inout RandomGenerator
    ) -> SpectralNormState? {
        enabled ? SpectralNormState(weight: weight, outputAxis: outputAxis, generator: &generator) : nil
    }

    public var keyedState: [(key: String, state: AnyObject)] { [("weight_u", u), ("weight_v", v)] }

    func normalized(_ weight: Tensor, training: Bool) -> Tensor {
        let (result, sigma) = normalizer.normalize(weight, u: u, v: v, training: training)
        lastSigma = sigma
        return result
    }
}

/// A layer whose weight may be spectrally normalised.
public protocol WeightLayer: Layer {
    /// The raw weight, as the optimiser updates it.
    var weight: Parameter { get }
    /// Present when the weight is spectrally normalised.
    var spectralNorm: SpectralNormState? { get }
}

extension WeightLayer {
    /// The weight used in the forward pass: W, or W/σ with spectral normalisation (which runs one
    /// power iteration first in training mode).
    public var effectiveWeight: Tensor { spectralNorm?.normalized(weight.value, training: isTraining) ?? weight.value }
    /// σ of the last forward, for spectrally normalised layers.
    public var lastSigma: Float? { spectralNorm?.lastSigma }
    /// "SN " for spectrally normalised layers, for summaries.
    var normalizedMark: String { spectralNorm == nil ? "" : "SN " }
}

/// y = x Wᵀ + b. x (N, in) → (N, out); weight (out, in) as in PyTorch; optionally spectrally normalised.
public final class Linear: WeightLayer {
    public var isTraining = true
    public let weight: Parameter
    public let bias: Parameter?
    public let spectralNorm: SpectralNormState?

    public init(
        inputs: Int, outputs: Int, bias: Bool = true, spectralNorm: Bool = false,
        initializer: WeightInitializer = .pytorchDefault, generator: inout RandomGenerator
    ) {
        let initial = initializer.make([outputs, inputs], fanIn: inputs, fanOut: outputs, generator: &generator)
        weight = Parameter(initial)
        self.bias = bias ? Parameter(.zeros([outputs])) : nil
        self.spectralNorm = SpectralNormState.make(spectralNorm, weight: initial, outputAxis: 0, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { .linear(x, weight: effectiveWeight, bias: bias?.value) }
    public var summary: String { "\(normalizedMark)Dense \(weight.shape[1])→\(weight.shape[0])" }
    public func outputShape(forInput input: [Int]) -> [Int] { [input[0], weight.shape[0]] }
    public func multiplyAccumulates(forInput input: [Int]) -> Int { input[0] * weight.value.count }
}

/// 2-D convolution. x (N, in, H, W) → (N, out, Ho, Wo); weight (out, in, kh, kw); optionally spectrally normalised.
public final class Conv2d: WeightLayer {
    public var isTraining = true
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    /// Zero padding (rows, columns) on both sides.
    public let padding: (height: Int, width: Int)
    public let spectralNorm: SpectralNormState?

    /// A square kernel with the same padding on every side.
    public convenience init(
        inputs: Int, outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
        spectralNorm: Bool = false, initializer: WeightInitializer = .pytorchDefault, generator: inout RandomGenerator
    ) {
        self.init(
            inputs: inputs, outputs: outputs, kernel: (kernel, kernel), stride: stride, padding: (padding, padding),
            bias: bias,
            spectralNorm: spectralNorm, initializer: initializer, generator: &generator)
    }

    /// A kernel of (height, width), padded by (rows, columns): InceptionV3's 1x7 and 7x1 layers.
    public init(
        inputs: Int, outputs: Int, kernel: (height: Int, width: Int), stride: Int = 1,
        padding: (height: Int, width: Int),
        bias: Bool = true, spectralNorm: Bool = false, initializer: WeightInitializer = .pytorchDefault,
        generator: inout RandomGenerator
    ) {
        let area = kernel.height * kernel.width
        let initial = initializer.make(
            [outputs, inputs, kernel.height, kernel.width], fanIn: inputs * area,
            fanOut: outputs * area, generator: &generator)
        weight = Parameter(initial)
        self.bias = bias ? Parameter(.zeros([outputs])) : nil
        self.stride = stride
        self.padding = padding
        self.spectralNorm = SpectralNormState.make(spectralNorm, weight: initial, outputAxis: 0, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        .conv2d(x, weight: effectiveWeight, bias: bias?.value, stride: stride, padding: padding)
    }

    public var summary: String { "\(normalizedMark)Conv \(weight.shape[2])x\(weight.shape[3])/\(stride)" }

    public func outputShape(forInput input: [Int]) -> [Int] {
        let (kernelHeight, kernelWidth) = (weight.shape[2], weight.shape[3])
        return [
            input[0], weight.shape[0], (input[2] + 2 * padding.height - kernelHeight) / stride + 1,
            (input[3] + 2 * padding.width - kernelWidth) / stride + 1,
        ]
    }

    public func multiplyAccumulates(forInput input: [Int]) -> Int {
        let output = outputShape(forInput: input)
        return output[0] * output[2] * output[3] * weight.value.count
    }
}

/// Transposed 2-D convolution (upsampling). x (N, in, H, W) → (N, out, Ho, Wo) with
/// Ho = (H − 1)·stride − 2·padding + kernel + outputPadding; weight (in, out, k, k) as in PyTorch.
/// Spectral normalisation views the weight with the output axis (1) first.
public final class ConvTranspose2d: WeightLayer {
    public var isTraining = true
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int
    public let spectralNorm: SpectralNormState?

    public init(
        inputs: Int, outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
        bias: Bool = true, spectralNorm: Bool = false, initializer: WeightInitializer = .pytorchDefault,
        generator: inout RandomGenerator
    ) {
        // PyTorch computes the fans of a transposed conv from its (in, out, k, k) weight as if it were a conv.
        let initial = initializer.make(
            [inputs, outputs, kernel, kernel], fanIn: outputs * kernel * kernel,
            fanOut: inputs * kernel * kernel, generator: &generator)
        weight = Parameter(initial)
        self.bias = bias ? Parameter(.zeros([outputs])) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.spectralNorm = SpectralNormState.make(spectralNorm, weight: initial, outputAxis: 1, generator: &generator)
    }

    public var summary: String { "\(normalizedMark)ConvTranspose \(weight.shape[2])x\(weight.shape[3])/\(stride)" }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        .convTranspose2d(
            x, weight: effectiveWeight, bias: bias?.value, stride: stride, padding: padding,
            outputPadding: outputPadding)
    }

    public func outputShape(forInput input: [Int]) -> [Int] {
        let kernel = weight.shape[2]
        let size = { (n: Int) in (n - 1) * self.stride - 2 * self.padding + kernel + self.outputPadding }
        return [input[0], weight.shape[1], size(input[2]), size(input[3])]
    }

    /// Counted per input pixel, as the forward computes it: every input value meets every weight.
    public func multiplyAccumulates(forInput input: [Int]) -> Int {
        input[0] * input[2] * input[3] * weight.value.count
    }
}

/// Batch normalisation per channel of (N, C, H, W) or (N, C) input.
///
/// Training mode normalises with the batch's statistics and moves the running statistics toward
/// them (running = (1 − momentum)·running + momentum·batch, with the unbiased batch variance, as
/// PyTorch does); evaluation mode normalises with the running statistics. State names follow
/// PyTorch: `weight` (γ), `bias` (β), `running_mean`, `running_var`.
public final class BatchNorm2d: Layer {
    /// Which learned affine terms follow the normalisation.
    public enum Affine: String, Codable, Sendable {
        /// γ and β (PyTorch's default).
        case scaleAndShift
        /// β only: Keras `scale=False`, as in the article's generator.
        case shiftOnly
        case none
    }

    public var isTraining = true
    /// γ.
    public let weight: Parameter?
    /// β.
    public let bias: Parameter?
    public let runningMean: Buffer
    public let runningVar: Buffer
    /// The weight of a new batch in the running statistics; 1/k for the k-th batch makes them a plain
    /// average (standing statistics).
    public var momentum: Float
    public let epsilon: Float
    /// With a group, training mode normalises with the statistics of every rank's batch together
    /// (synchronised batch norm), so a distributed step is the single-process step at the same
    /// global batch; nil: this process's batch only (PyTorch DDP's default).
    public var synchronization: (any ProcessGroup)?

    /// `momentum` is PyTorch's (the weight of the new batch); Keras's momentum 0.99 is 0.01 here.
    public init(channels: Int, affine: Affine = .scaleAndShift, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        weight = affine == .scaleAndShift ? Parameter(.ones([channels])) : nil
        bias = affine == .none ? nil : Parameter(.zeros([channels]))
        runningMean = Buffer(.zeros([channels]))
        runningVar = Buffer(.ones([channels]))
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining else {
            return .batchNormInference(
                x, mean: runningMean.value, variance: runningVar.value,
                scale: weight?.value, shift: bias?.value, epsilon: epsilon)
        }
        let (output, mean, variance) =
            synchronization.map {
                Tensor.synchronizedBatchNormTraining(
                    x, scale: weight?.value, shift: bias?.value, epsilon: epsilon, group: $0)
            } ?? Tensor.batchNormTraining(x, scale: weight?.value, shift: bias?.value, epsilon: epsilon)
        let reduced = Float(x.count / x.shape[1] * (synchronization?.size ?? 1))
        noGrad {
            let unbiased = variance * (reduced / max(reduced - 1, 1))
            runningMean.assign(runningMean.value * (1 - momentum) + mean * momentum)
            runningVar.assign(runningVar.value * (1 - momentum) + unbiased * momentum)
        }
        return output
    }
}

/// A lookup table: integer ids (N) → rows of a (count, dimension) weight, for class-conditional models.
public final class Embedding: Module {
    public var isTraining = true
    public let weight: Parameter

    public init(count: Int, dimension: Int, generator: inout RandomGenerator) {
        weight = Parameter(.randomNormal([count, dimension], generator: &generator))
    }

    /// A table with the given (count, dimension) initial rows.
    public init(initial: Tensor) {
        weight = Parameter(initial)
    }

    /// Rows `ids` of the table as an (N, dimension) tensor; differentiable in the table.
    public func callAsFunction(_ ids: [Int]) -> Tensor {
        let count = weight.shape[0]
        for id in ids where id < 0 || id >= count {
            fatalError("Embedding: id \(id) is outside the table of \(count) rows")
        }
        // A one-hot (N, count) matrix times the table: simple, exact, and differentiable.
        var oneHot = [Float](repeating: 0, count: ids.count * count)
        for (row, id) in ids.enumerated() { oneHot[row * count + id] = 1 }
        return .matmul(Tensor(shape: [ids.count, count], scalars: oneHot), weight.value)
    }
}
