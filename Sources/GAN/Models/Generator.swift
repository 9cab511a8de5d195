import Autodiff
import FileFormats
import NeuralNet

/// G: z (B, latent) → image (B, C, R, R) in [−1, 1].
///
/// SAGAN (docs/model.md §2.1): dense z → 4·4·ch(4) → ReLU; transposed-conv blocks up to R with batch norm
/// and ReLU, self-attention after the chosen sides; conv 3x3 to the image channels; tanh.
/// DCGAN: dense → batch norm → ReLU; blocks up to R/2; a last transposed conv to the image; tanh.
public final class Generator: Module {
    public var isTraining = true
    public let config: ModelConfig
    /// z → the 4x4 feature map.
    public let project: Linear
    /// DCGAN's batch norm after the projection.
    public let projectNorm: BatchNorm2d?
    public let blocks: [any Layer]
    /// The layer that produces the image (before tanh).
    public let output: any Layer

    public init(config: ModelConfig, generator: inout RandomGenerator) {
        self.config = config
        let first = config.channels(atSide: 4)
        project = Linear(
            inputs: config.latentSize, outputs: first * 16, spectralNorm: config.spectralNorm,
            initializer: config.initializer, generator: &generator)
        projectNorm =
            config.family == .dcgan
            ? BatchNorm2d(channels: first, momentum: config.batchNormMomentum, epsilon: config.batchNormEpsilon) : nil
        var blocks: [any Layer] = []
        for side in config.generatorSides {
            blocks.append(
                UpBlock(
                    inputs: config.channels(atSide: side / 2), outputs: config.channels(atSide: side), config: config,
                    generator: &generator))
            if config.generatorAttentionSides.contains(side) {
                blocks.append(
                    makeSelfAttention(
                        config.attentionVariant, channels: config.channels(atSide: side),
                        spectralNorm: config.spectralNorm, initializer: config.initializer, generator: &generator))
            }
        }
        self.blocks = blocks
        let last = config.channels(atSide: config.generatorSides.last!)
        switch config.family {
        case .sagan:
            output = Conv2d(
                inputs: last, outputs: config.imageChannels, kernel: 3, padding: 1, spectralNorm: config.spectralNorm,
                initializer: config.initializer, generator: &generator)
        case .dcgan:
            output = ConvTranspose2d(
                inputs: last, outputs: config.imageChannels, kernel: 4, stride: 2, padding: 1,
                initializer: config.initializer, generator: &generator)
        }
    }

    /// Images for latent codes z (and, in a class-conditional model, one class label per image).
    public func callAsFunction(_ z: Tensor, labels: [Int]? = nil) -> Tensor {
        require(
            z.rank == 2 && z.shape[1] == config.latentSize,
            "Generator: z must be (batch, \(config.latentSize)), got \(z.shape)")
        require(
            config.classCount == 0 || labels?.count == z.shape[0],
            "Generator: a class-conditional generator needs \(z.shape[0]) labels, got \(labels?.count ?? 0)")
        var h = project(z).reshaped(to: [z.shape[0], config.channels(atSide: 4), 4, 4])  // (B, ch(4), 4, 4)
        if let projectNorm { h = projectNorm(h) }
        h = h.relu()
        for block in blocks {  // (B, ch(R'), R', R')
            h = (block as? UpBlock).map { $0(h, labels: labels) } ?? block(h)
        }
        return output(h).tanh()  // (B, C, R, R)
    }

    /// The self-attention blocks, in order.
    public var attentionLayers: [any SelfAttentionLayer] { blocks.compactMap { $0 as? any SelfAttentionLayer } }
}
