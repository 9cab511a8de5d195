import Autodiff
import FileFormats
import NeuralNet

/// D: image (B, C, R, R) → raw logit (B, 1), unscaled (no sigmoid), as the hinge loss needs.
///
/// SAGAN (docs/model.md §2.2): conv 4x4 stride-2 blocks with leaky ReLU down to 4x4, self-attention after
/// the chosen sides, spectral norm everywhere; flatten; dense → 1. DCGAN: the same blocks with batch
/// norm on all but the first, leaky ReLU 0.2, no spectral norm.
public final class Discriminator: Module {
    public var isTraining = true
    public let config: ModelConfig
    public let blocks: [any Layer]
    /// Flattened 4x4 map → logit.
    public let head: Linear
    /// A class-conditional model's projection (Miyato & Koyama 2018): logit += ⟨embed(y), features⟩.
    public let projection: Embedding?

    public init(config: ModelConfig, generator: inout RandomGenerator) {
        self.config = config
        var blocks: [any Layer] = []
        var inputs = config.imageChannels
        for (index, side) in config.discriminatorSides.enumerated() {
            let outputs = config.channels(atSide: side)
            blocks.append(
                DownBlock(
                    inputs: inputs, outputs: outputs, normalized: config.family == .dcgan && index > 0,
                    config: config, generator: &generator))
            if config.discriminatorAttentionSides.contains(side) {
                blocks.append(
                    makeSelfAttention(
                        config.attentionVariant, channels: outputs, spectralNorm: config.spectralNorm,
                        initializer: config.initializer, generator: &generator))
            }
            inputs = outputs
        }
        self.blocks = blocks
        head = Linear(
            inputs: config.channels(atSide: 4) * 16, outputs: 1, spectralNorm: config.spectralNorm,
            initializer: config.initializer, generator: &generator)
        projection =
            config.classCount > 0
            ? Embedding(
                initial: .randomNormal(
                    [config.classCount, config.channels(atSide: 4) * 16], standardDeviation: 0.02,
                    generator: &generator))
            : nil
    }

    /// Raw logits (B, 1); a class-conditional model also takes one label per image.
    public func callAsFunction(_ images: Tensor, labels: [Int]? = nil) -> Tensor {
        let expected = [config.imageChannels, config.resolution, config.resolution]
        require(
            images.rank == 4 && Array(images.shape.dropFirst()) == expected,
            "Discriminator: images must be (batch, \(expected.map(String.init).joined(separator: ", "))), got "
                + "\(images.shape)"
        )
        require(
            config.classCount == 0 || labels?.count == images.shape[0],
            "Discriminator: a class-conditional discriminator needs \(images.shape[0]) labels, got "
                + "\(labels?.count ?? 0)"
        )
        var h = images
        for block in blocks { h = block(h) }  // (B, ch(4), 4, 4)
        let features = h.flattened()  // (B, ch(4)·16)
        guard let projection, let labels else { return head(features) }
        return head(features) + (projection(labels) * features).sum(alongAxes: [1], keepingDimensions: true)  // (B, 1)
    }

    public var attentionLayers: [any SelfAttentionLayer] { blocks.compactMap { $0 as? any SelfAttentionLayer } }
}
