import Autodiff
import NeuralNet

/// D: image (B, C, R, R) → raw logit (B, 1), unscaled (no sigmoid), as the hinge loss needs.
///
/// SAGAN (SAGAN.md §2.2): conv 4x4 stride-2 blocks with leaky ReLU down to 4x4, self-attention after
/// the chosen sides, spectral norm everywhere; flatten; dense → 1. DCGAN: the same blocks with batch
/// norm on all but the first, leaky ReLU 0.2, no spectral norm.
public final class Discriminator: Module {
    public var isTraining = true
    public let config: ModelConfig
    public let blocks: [any Layer]
    /// Flattened 4x4 map → logit.
    public let head: Linear

    public init(config: ModelConfig, generator: inout RandomGenerator) {
        self.config = config
        var blocks: [any Layer] = []
        var inputs = config.imageChannels
        for (index, side) in config.discriminatorSides.enumerated() {
            let outputs = config.channels(atSide: side)
            blocks.append(DownBlock(inputs: inputs, outputs: outputs, normalized: config.family == .dcgan && index > 0,
                                    config: config, generator: &generator))
            if config.discriminatorAttentionSides.contains(side) {
                blocks.append(makeSelfAttention(config.attentionVariant, channels: outputs, spectralNorm: config.spectralNorm,
                                                initializer: config.initializer, generator: &generator))
            }
            inputs = outputs
        }
        self.blocks = blocks
        head = Linear(inputs: config.channels(atSide: 4) * 16, outputs: 1, spectralNorm: config.spectralNorm,
                      initializer: config.initializer, generator: &generator)
    }

    public func callAsFunction(_ images: Tensor) -> Tensor {
        let expected = [config.imageChannels, config.resolution, config.resolution]
        require(images.rank == 4 && Array(images.shape.dropFirst()) == expected,
                     "Discriminator: images must be (batch, \(expected.map(String.init).joined(separator: ", "))), got \(images.shape)")
        var h = images
        for block in blocks { h = block(h) }        // (B, ch(4), 4, 4)
        return head(h.flattened())                   // (B, 1)
    }

    public var attentionLayers: [any SelfAttentionLayer] { blocks.compactMap { $0 as? any SelfAttentionLayer } }
}
