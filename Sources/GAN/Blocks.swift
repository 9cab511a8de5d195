import Autodiff
import NeuralNet

/// Transposed conv 4x4 stride 2 (doubling the side) → batch norm → ReLU: one generator step up.
public final class UpBlock: Layer {
    public var isTraining = true
    public let conv: ConvTranspose2d
    public let norm: BatchNorm2d

    init(inputs: Int, outputs: Int, config: ModelConfig, generator: inout RandomGenerator) {
        // No bias: the batch norm's shift follows.
        conv = ConvTranspose2d(inputs: inputs, outputs: outputs, kernel: 4, stride: 2, padding: 1, bias: false,
                               spectralNorm: config.spectralNorm, initializer: config.initializer, generator: &generator)
        norm = BatchNorm2d(channels: outputs, affine: config.generatorNormalization, momentum: config.batchNormMomentum,
                           epsilon: config.batchNormEpsilon)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { norm(conv(x)).relu() }
    public func outputShape(forInput input: [Int]) -> [Int] { conv.outputShape(forInput: input) }
    public func multiplyAccumulates(forInput input: [Int]) -> Int { conv.multiplyAccumulates(forInput: input) }
}

/// Conv 4x4 stride 2 (halving the side) → optional batch norm → leaky ReLU: one discriminator step down.
public final class DownBlock: Layer {
    public var isTraining = true
    public let conv: Conv2d
    public let norm: BatchNorm2d?
    public let slope: Float

    init(inputs: Int, outputs: Int, normalized: Bool, config: ModelConfig, generator: inout RandomGenerator) {
        conv = Conv2d(inputs: inputs, outputs: outputs, kernel: 4, stride: 2, padding: 1, bias: !normalized,
                      spectralNorm: config.spectralNorm, initializer: config.initializer, generator: &generator)
        norm = normalized ? BatchNorm2d(channels: outputs, momentum: config.batchNormMomentum, epsilon: config.batchNormEpsilon) : nil
        slope = config.leakySlope
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = conv(x)
        return (norm.map { $0(y) } ?? y).leakyRelu(slope: slope)
    }

    public func outputShape(forInput input: [Int]) -> [Int] { conv.outputShape(forInput: input) }
    public func multiplyAccumulates(forInput input: [Int]) -> Int { conv.multiplyAccumulates(forInput: input) }
}
