import Autodiff

/// GAN losses on raw discriminator logits.
public enum GANLoss {
    /// Discriminator loss on real and fake logits.
    public static func discriminator(_ loss: TrainConfig.Loss, real: Tensor, fake: Tensor) -> Tensor {
        switch loss {
        case .hinge:
            // max(0, 1 − D(x)) on real images and max(0, 1 + D(G(z))) on generated ones.
            return real.affine(scale: -1, shift: 1).relu().mean() + fake.affine(scale: 1, shift: 1).relu().mean()
        case .nonSaturating: return softplus(-real).mean() + softplus(fake).mean()
        }
    }

    /// Generator loss on the logits of its samples.
    public static func generator(_ loss: TrainConfig.Loss, fake: Tensor) -> Tensor {
        switch loss {
        case .hinge: return -fake.mean()
        case .nonSaturating: return softplus(-fake).mean()
        }
    }

    /// log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|), stable for large |x|.
    static func softplus(_ x: Tensor) -> Tensor { x.relu() + ((-x.abs()).exp() + 1).log() }
}
