import Autodiff
import NeuralNet

/// The InceptionV3 that FID is defined with: Google's 2015 TensorFlow graph as NVIDIA ported it
/// (StyleGAN's and pytorch-fid's weights), up to the 2048 pool3 features. Built from the
/// project's own layers and run by the engine; the weights come from
/// `InceptionWeights` (docs/evaluation.md §1). Input: (N, 3, 299, 299) RGB scaled to [−1, 1).
public final class InceptionV3: Module {
    public var isTraining = false
    let conv: InceptionConv
    let conv1: InceptionConv
    let conv2: InceptionConv
    let conv3: InceptionConv
    let conv4: InceptionConv
    let mixed: [any InceptionBlock]

    public static let featureCount = 2048
    public static let inputSide = 299

    public init() {
        var random = RandomGenerator(seed: 0)  // every value is replaced when the weights load
        conv = InceptionConv("conv", 3, 32, kernel: (3, 3), stride: 2, &random)
        conv1 = InceptionConv("conv_1", 32, 32, kernel: (3, 3), &random)
        conv2 = InceptionConv("conv_2", 32, 64, kernel: (3, 3), padding: (1, 1), &random)
        conv3 = InceptionConv("conv_3", 64, 80, kernel: (1, 1), &random)
        conv4 = InceptionConv("conv_4", 80, 192, kernel: (3, 3), &random)
        mixed = [
            InceptionA("mixed", inputs: 192, poolChannels: 32, &random),
            InceptionA("mixed_1", inputs: 256, poolChannels: 64, &random),
            InceptionA("mixed_2", inputs: 288, poolChannels: 64, &random),
            InceptionB("mixed_3", inputs: 288, &random),
            InceptionC("mixed_4", channels: 128, &random),
            InceptionC("mixed_5", channels: 160, &random),
            InceptionC("mixed_6", channels: 160, &random),
            InceptionC("mixed_7", channels: 192, &random),
            InceptionD("mixed_8", &random),
            InceptionE("mixed_9", inputs: 1280, maxPool: false, &random),
            InceptionE("mixed_10", inputs: 2048, maxPool: true, &random),
        ]
    }

    /// Pool3 features: images (N, 3, 299, 299) in [−1, 1) → (N, 2048). Always in Float32, whatever
    /// the engine's precision: the metrics must not depend on the precision the images were made in.
    public func callAsFunction(_ images: Tensor) -> Tensor {
        withPrecision(.fp32) { features(images) }
    }

    private func features(_ images: Tensor) -> Tensor {
        var x = conv2(conv1(conv(images)))  // (N, 64, 147, 147)
        x = x.maxPool2d(window: 3, stride: 2)  // (N, 64, 73, 73)
        x = conv4(conv3(x)).maxPool2d(window: 3, stride: 2)  // (N, 192, 35, 35)
        for block in mixed { x = block(x) }  // (N, 2048, 8, 8)
        return x.avgPool2d(window: 8, stride: 8).reshaped(to: [x.shape[0], Self.featureCount])  // (N, 2048)
    }

    /// Every conv + normalisation layer, with its name in the weights file.
    var layers: [InceptionConv] { [conv, conv1, conv2, conv3, conv4] + mixed.flatMap(\.layers) }
}

/// Conv (no bias) → batch norm in inference form with β only, ε = 0.001 → ReLU: each of the
/// network's 94 layers.
final class InceptionConv: Module {
    var isTraining = false
    let conv: Conv2d
    let norm: BatchNorm2d
    /// The layer's name in the weights file: `mixed_4.tower_1.conv_2`.
    let fileName: String

    init(
        _ fileName: String, _ inputs: Int, _ outputs: Int, kernel: (height: Int, width: Int), stride: Int = 1,
        padding: (height: Int, width: Int) = (0, 0), _ random: inout RandomGenerator
    ) {
        self.fileName = fileName
        conv = Conv2d(
            inputs: inputs, outputs: outputs, kernel: kernel, stride: stride, padding: padding, bias: false,
            generator: &random)
        norm = BatchNorm2d(channels: outputs, affine: .shiftOnly, epsilon: 0.001)
        conv.isTraining = false
        norm.isTraining = false
    }

    func callAsFunction(_ x: Tensor) -> Tensor { norm(conv(x)).relu() }
}

/// A mixed block: branches computed from the same input and concatenated along channels.
protocol InceptionBlock: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
    var layers: [InceptionConv] { get }
}

/// Runs convolutions one after another.
func chain(_ layers: [InceptionConv], _ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }

/// 35x35: 1x1 ‖ 1x1 → 5x5 ‖ 1x1 → 3x3 → 3x3 ‖ average pool → 1x1.
final class InceptionA: InceptionBlock {
    var isTraining = false
    let conv: InceptionConv
    let tower: [InceptionConv]
    let tower1: [InceptionConv]
    let tower2: InceptionConv

    init(_ name: String, inputs: Int, poolChannels: Int, _ random: inout RandomGenerator) {
        conv = InceptionConv("\(name).conv", inputs, 64, kernel: (1, 1), &random)
        tower = [
            InceptionConv("\(name).tower.conv", inputs, 48, kernel: (1, 1), &random),
            InceptionConv("\(name).tower.conv_1", 48, 64, kernel: (5, 5), padding: (2, 2), &random),
        ]
        tower1 = [
            InceptionConv("\(name).tower_1.conv", inputs, 64, kernel: (1, 1), &random),
            InceptionConv("\(name).tower_1.conv_1", 64, 96, kernel: (3, 3), padding: (1, 1), &random),
            InceptionConv("\(name).tower_1.conv_2", 96, 96, kernel: (3, 3), padding: (1, 1), &random),
        ]
        tower2 = InceptionConv("\(name).tower_2.conv", inputs, poolChannels, kernel: (1, 1), &random)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let pooled = x.avgPool2d(window: 3, stride: 1, padding: 1)
        return Tensor.concatenated([conv(x), chain(tower, x), chain(tower1, x), tower2(pooled)], alongAxis: 1)
    }

    var layers: [InceptionConv] { [conv] + tower + tower1 + [tower2] }
}

/// 35x35 → 17x17: 3x3 stride 2 ‖ 1x1 → 3x3 → 3x3 stride 2 ‖ max pool.
final class InceptionB: InceptionBlock {
    var isTraining = false
    let conv: InceptionConv
    let tower: [InceptionConv]

    init(_ name: String, inputs: Int, _ random: inout RandomGenerator) {
        conv = InceptionConv("\(name).conv", inputs, 384, kernel: (3, 3), stride: 2, &random)
        tower = [
            InceptionConv("\(name).tower.conv", inputs, 64, kernel: (1, 1), &random),
            InceptionConv("\(name).tower.conv_1", 64, 96, kernel: (3, 3), padding: (1, 1), &random),
            InceptionConv("\(name).tower.conv_2", 96, 96, kernel: (3, 3), stride: 2, &random),
        ]
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.concatenated([conv(x), chain(tower, x), x.maxPool2d(window: 3, stride: 2)], alongAxis: 1)
    }

    var layers: [InceptionConv] { [conv] + tower }
}

/// 17x17 with factorised 7x7s: 1x1 ‖ 1x1 → 1x7 → 7x1 ‖ 1x1 → 7x1 → 1x7 → 7x1 → 1x7 ‖ average pool → 1x1.
final class InceptionC: InceptionBlock {
    var isTraining = false
    let conv: InceptionConv
    let tower: [InceptionConv]
    let tower1: [InceptionConv]
    let tower2: InceptionConv

    init(_ name: String, channels c7: Int, _ random: inout RandomGenerator) {
        let wide = (height: 1, width: 7)
        let tall = (height: 7, width: 1)
        let padWide = (height: 0, width: 3)
        let padTall = (height: 3, width: 0)
        conv = InceptionConv("\(name).conv", 768, 192, kernel: (1, 1), &random)
        tower = [
            InceptionConv("\(name).tower.conv", 768, c7, kernel: (1, 1), &random),
            InceptionConv("\(name).tower.conv_1", c7, c7, kernel: wide, padding: padWide, &random),
            InceptionConv("\(name).tower.conv_2", c7, 192, kernel: tall, padding: padTall, &random),
        ]
        tower1 = [
            InceptionConv("\(name).tower_1.conv", 768, c7, kernel: (1, 1), &random),
            InceptionConv("\(name).tower_1.conv_1", c7, c7, kernel: tall, padding: padTall, &random),
            InceptionConv("\(name).tower_1.conv_2", c7, c7, kernel: wide, padding: padWide, &random),
            InceptionConv("\(name).tower_1.conv_3", c7, c7, kernel: tall, padding: padTall, &random),
            InceptionConv("\(name).tower_1.conv_4", c7, 192, kernel: wide, padding: padWide, &random),
        ]
        tower2 = InceptionConv("\(name).tower_2.conv", 768, 192, kernel: (1, 1), &random)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let pooled = x.avgPool2d(window: 3, stride: 1, padding: 1)
        return Tensor.concatenated([conv(x), chain(tower, x), chain(tower1, x), tower2(pooled)], alongAxis: 1)
    }

    var layers: [InceptionConv] { [conv] + tower + tower1 + [tower2] }
}

/// 17x17 → 8x8: 1x1 → 3x3 stride 2 ‖ 1x1 → 1x7 → 7x1 → 3x3 stride 2 ‖ max pool.
final class InceptionD: InceptionBlock {
    var isTraining = false
    let tower: [InceptionConv]
    let tower1: [InceptionConv]

    init(_ name: String, _ random: inout RandomGenerator) {
        tower = [
            InceptionConv("\(name).tower.conv", 768, 192, kernel: (1, 1), &random),
            InceptionConv("\(name).tower.conv_1", 192, 320, kernel: (3, 3), stride: 2, &random),
        ]
        tower1 = [
            InceptionConv("\(name).tower_1.conv", 768, 192, kernel: (1, 1), &random),
            InceptionConv("\(name).tower_1.conv_1", 192, 192, kernel: (1, 7), padding: (0, 3), &random),
            InceptionConv("\(name).tower_1.conv_2", 192, 192, kernel: (7, 1), padding: (3, 0), &random),
            InceptionConv("\(name).tower_1.conv_3", 192, 192, kernel: (3, 3), stride: 2, &random),
        ]
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.concatenated([chain(tower, x), chain(tower1, x), x.maxPool2d(window: 3, stride: 2)], alongAxis: 1)
    }

    var layers: [InceptionConv] { tower + tower1 }
}

/// 8x8 with split 3x3s: 1x1 ‖ 1x1 → (1x3 ‖ 3x1) ‖ 1x1 → 3x3 → (1x3 ‖ 3x1) ‖ pool → 1x1. The
/// pool averages (padding not counted) in mixed_9 and takes the maximum in mixed_10, as in the
/// TensorFlow graph FID was defined with.
final class InceptionE: InceptionBlock {
    var isTraining = false
    let conv: InceptionConv
    let towerConv: InceptionConv
    let towerMixedConv: InceptionConv
    let towerMixedConv1: InceptionConv
    let tower1Conv: InceptionConv
    let tower1Conv1: InceptionConv
    let tower1MixedConv: InceptionConv
    let tower1MixedConv1: InceptionConv
    let tower2Conv: InceptionConv
    /// The TF graph pools the last block's branch with a max, the one before with an average.
    let maxPool: Bool

    init(_ name: String, inputs: Int, maxPool: Bool, _ random: inout RandomGenerator) {
        self.maxPool = maxPool
        conv = InceptionConv("\(name).conv", inputs, 320, kernel: (1, 1), &random)
        towerConv = InceptionConv("\(name).tower_conv", inputs, 384, kernel: (1, 1), &random)
        towerMixedConv = InceptionConv("\(name).tower_mixed_conv", 384, 384, kernel: (1, 3), padding: (0, 1), &random)
        towerMixedConv1 = InceptionConv(
            "\(name).tower_mixed_conv_1", 384, 384, kernel: (3, 1), padding: (1, 0), &random)
        tower1Conv = InceptionConv("\(name).tower_1_conv", inputs, 448, kernel: (1, 1), &random)
        tower1Conv1 = InceptionConv("\(name).tower_1_conv_1", 448, 384, kernel: (3, 3), padding: (1, 1), &random)
        tower1MixedConv = InceptionConv(
            "\(name).tower_1_mixed_conv", 384, 384, kernel: (1, 3), padding: (0, 1), &random)
        tower1MixedConv1 = InceptionConv(
            "\(name).tower_1_mixed_conv_1", 384, 384, kernel: (3, 1), padding: (1, 0), &random)
        tower2Conv = InceptionConv("\(name).tower_2_conv", inputs, 192, kernel: (1, 1), &random)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let a = towerConv(x)  // (N, 384, 8, 8)
        let b = tower1Conv1(tower1Conv(x))  // (N, 384, 8, 8)
        let pooled =
            maxPool ? x.maxPool2d(window: 3, stride: 1, padding: 1) : x.avgPool2d(window: 3, stride: 1, padding: 1)
        return Tensor.concatenated(
            [
                conv(x), towerMixedConv(a), towerMixedConv1(a), tower1MixedConv(b), tower1MixedConv1(b),
                tower2Conv(pooled),
            ], alongAxis: 1)
    }

    var layers: [InceptionConv] {
        [
            conv, towerConv, towerMixedConv, towerMixedConv1, tower1Conv, tower1Conv1, tower1MixedConv,
            tower1MixedConv1, tower2Conv,
        ]
    }
}
