import Autodiff
import NeuralNet

/// Transposed conv 4x4 stride 2 (doubling the side) → batch norm → ReLU: one generator step up.
/// In a class-conditional model the batch norm's scale and shift come from per-class tables
/// (conditional batch norm, initialised to 1 and 0).
public final class UpBlock: Layer {
    public var isTraining = true
    public let conv: ConvTranspose2d
    public let norm: BatchNorm2d
    public let classScale: Embedding?
    public let classShift: Embedding?

    init(inputs: Int, outputs: Int, config: ModelConfig, generator: inout RandomGenerator) {
        // No bias: the batch norm's shift follows.
        conv = ConvTranspose2d(
            inputs: inputs, outputs: outputs, kernel: 4, stride: 2, padding: 1, bias: false,
            spectralNorm: config.spectralNorm, initializer: config.initializer, generator: &generator)
        let conditional = config.classCount > 0
        norm = BatchNorm2d(
            channels: outputs, affine: conditional ? .none : config.generatorNormalization,
            momentum: config.batchNormMomentum, epsilon: config.batchNormEpsilon)
        classScale = conditional ? Embedding(initial: .ones([config.classCount, outputs])) : nil
        classShift = conditional ? Embedding(initial: .zeros([config.classCount, outputs])) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { callAsFunction(x, labels: nil) }

    /// `labels` (one class per image) are required in a class-conditional model.
    public func callAsFunction(_ x: Tensor, labels: [Int]?) -> Tensor {
        var y = norm(conv(x))  // (B, C, H, W)
        if let classScale, let classShift {
            guard let labels, labels.count == x.shape[0] else {
                fatalError("UpBlock: a class-conditional generator needs one label per image (\(x.shape[0]))")
            }
            let channels = y.shape[1]
            y =
                y * classScale(labels).reshaped(to: [labels.count, channels, 1, 1])
                + classShift(labels).reshaped(to: [labels.count, channels, 1, 1])
        }
        return y.relu()
    }
    public func outputShape(forInput input: [Int]) -> [Int] { conv.outputShape(forInput: input) }
    public func multiplyAccumulates(forInput input: [Int]) -> Int { conv.multiplyAccumulates(forInput: input) }

    public var summary: String {
        let batchNorm = classScale != nil ? "class-conditional BN" : "BN(\(norm.weight == nil ? "β" : "γ,β"))"
        return "\(conv.summary) → \(batchNorm) → ReLU"
    }
}

/// Conv 4x4 stride 2 (halving the side) → optional batch norm → leaky ReLU: one discriminator step down.
public final class DownBlock: Layer {
    public var isTraining = true
    public let conv: Conv2d
    public let norm: BatchNorm2d?
    public let slope: Float

    init(inputs: Int, outputs: Int, normalized: Bool, config: ModelConfig, generator: inout RandomGenerator) {
        conv = Conv2d(
            inputs: inputs, outputs: outputs, kernel: 4, stride: 2, padding: 1, bias: !normalized,
            spectralNorm: config.spectralNorm, initializer: config.initializer, generator: &generator)
        norm =
            normalized
            ? BatchNorm2d(channels: outputs, momentum: config.batchNormMomentum, epsilon: config.batchNormEpsilon) : nil
        slope = config.leakySlope
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = conv(x)
        return (norm.map { $0(y) } ?? y).leakyRelu(slope: slope)
    }

    public func outputShape(forInput input: [Int]) -> [Int] { conv.outputShape(forInput: input) }
    public func multiplyAccumulates(forInput input: [Int]) -> Int { conv.multiplyAccumulates(forInput: input) }
    public var summary: String { "\(conv.summary)\(norm == nil ? "" : " → BN") → LeakyReLU(\(slope))" }
}
