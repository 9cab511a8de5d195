import FileFormats
import NeuralNet

/// Why settings cannot be used. Each case names what is at fault; the message says why, in words
/// a user of the command line reads as they are.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// A setting, named as in a JSON config (`model.resolution`, `batchSize`), has a value the model
    /// or the training cannot use.
    case invalidSetting(_ setting: String, _ message: String)
    /// A config file (`source` names the setting and the path) cannot be read, parsed or applied.
    case configFile(_ source: String, _ message: String)
    /// The dataset does not suit the settings.
    case dataset(_ message: String)
    /// A value given for `setting` does not fit the model; the message starts with the setting.
    case invalidArgument(_ setting: Setting, _ message: String)

    public var description: String {
        switch self {
        case .invalidSetting(_, let message), .dataset(let message), .invalidArgument(_, let message): return message
        case .configFile(let source, let message): return "\(source): \(message)"
        }
    }
}

/// Everything that determines a generator/discriminator pair. Layer lists are derived from the
/// resolution: channels at feature side r are `baseWidth / r` (the article's 2048/r: 512 at 4x4,
/// 16 at 128x128), and attention is placed by feature-map side, never by layer index.
public struct ModelConfig: Codable, Hashable, Sendable {
    public enum Family: String, Codable, Sendable {
        /// The article's SAGAN: spectral norm, self-attention, hinge-loss logits.
        case sagan
        /// The DCGAN baseline (Radford et al.): no spectral norm, no attention, batch norm in both nets.
        case dcgan
    }

    public var family: Family
    /// Output side R (a power of two).
    public var resolution: Int
    /// 1 (grayscale) or 3 (RGB).
    public var imageChannels: Int
    /// Size of z.
    public var latentSize: Int
    /// Channels at side r are baseWidth / r.
    public var baseWidth: Int
    /// Feature-map sides after which the generator applies self-attention.
    public var generatorAttentionSides: [Int]
    /// Feature-map sides after which the discriminator applies self-attention.
    public var discriminatorAttentionSides: [Int]
    public var attentionVariant: AttentionVariant
    /// The discriminator's leaky ReLU slope (the article: 0.02; the author's code ran 0.1; DCGAN 0.2).
    public var leakySlope: Float
    public var spectralNorm: Bool
    /// The generator's batch-norm affine terms (the author's code: shift only).
    public var generatorNormalization: BatchNorm2d.Affine
    /// PyTorch-convention momentum (Keras 0.99 is 0.01 here).
    public var batchNormMomentum: Float
    public var batchNormEpsilon: Float
    public var initializer: WeightInitializer
    /// Classes of a class-conditional model (conditional batch norm in G, a projection
    /// discriminator); 0 for an unconditional one, and in files written before conditional models.
    @ZeroIfAbsent public var classCount = 0

    /// Channels of a feature map of side `side`.
    public func channels(atSide side: Int) -> Int { baseWidth / side }

    /// Sides of the generator's up-sampling block outputs: 8, 16, …, R (SAGAN) or R/2 (DCGAN, whose
    /// last transposed convolution produces the image).
    public var generatorSides: [Int] {
        let last = family == .sagan ? resolution : resolution / 2
        return Array(sequence(first: 8, next: { $0 * 2 }).prefix { $0 <= last })
    }

    /// Sides of the discriminator's down-sampling block outputs: R/2, R/4, …, 4.
    public var discriminatorSides: [Int] { Array(sequence(first: resolution / 2, next: { $0 / 2 }).prefix { $0 >= 4 }) }

    /// Checks every setting; the error names the one at fault.
    /// Bounds past which a model cannot be built in memory (the allocation would end the process).
    static let largestBaseWidth = 16384
    static let largestLatentSize = 4096
    static let largestClassCount = 10000

    public func validate() throws {
        guard resolution >= 16, resolution <= 512, resolution & (resolution - 1) == 0 else {
            throw ConfigurationError.invalidSetting(
                "model.resolution", "resolution \(resolution) must be a power of two from 16 to 512")
        }
        guard imageChannels == 1 || imageChannels == 3 else {
            throw ConfigurationError.invalidSetting(
                "model.imageChannels", "image channels \(imageChannels) must be 1 (grayscale) or 3 (RGB)")
        }
        guard latentSize >= 1, latentSize <= Self.largestLatentSize else {
            throw ConfigurationError.invalidSetting(
                "model.latentSize", "model.latentSize \(latentSize) must be 1 to \(Self.largestLatentSize)")
        }
        guard baseWidth <= Self.largestBaseWidth else {
            throw ConfigurationError.invalidSetting(
                "model.baseWidth",
                "model.baseWidth \(baseWidth) is over \(Self.largestBaseWidth) (\(Self.largestBaseWidth / 4) "
                    + "channels at side 4, about 100 M parameters): larger models do not fit in memory")
        }
        guard baseWidth >= resolution, baseWidth % resolution == 0 else {
            throw ConfigurationError.invalidSetting(
                "model.baseWidth",
                "base width \(baseWidth) must be a multiple of the resolution \(resolution) (channels at side r are "
                    + "base width / r)"
            )
        }
        guard leakySlope >= 0, leakySlope < 1 else {
            throw ConfigurationError.invalidSetting(
                "model.leakySlope", "leaky ReLU slope \(leakySlope) must be in [0, 1)")
        }
        guard batchNormMomentum > 0, batchNormMomentum <= 1 else {
            throw ConfigurationError.invalidSetting(
                "model.batchNormMomentum", "batch-norm momentum \(batchNormMomentum) must be in (0, 1]")
        }
        guard batchNormEpsilon > 0 else {
            throw ConfigurationError.invalidSetting(
                "model.batchNormEpsilon", "batch-norm epsilon \(batchNormEpsilon) must be positive")
        }
        guard classCount >= 0, classCount != 1, classCount <= Self.largestClassCount else {
            throw ConfigurationError.invalidSetting(
                "model.classCount",
                "model.classCount \(classCount) must be 0 (unconditional) or 2 to \(Self.largestClassCount)")
        }
        if family == .dcgan && !(generatorAttentionSides.isEmpty && discriminatorAttentionSides.isEmpty) {
            throw ConfigurationError.invalidSetting(
                "model.generatorAttentionSides", "the DCGAN baseline has no self-attention; remove the attention sides")
        }
        for (net, sides, available) in [
            ("generator", generatorAttentionSides, generatorSides),
            ("discriminator", discriminatorAttentionSides, discriminatorSides),
        ] {
            for side in sides {
                guard available.contains(side) else {
                    throw ConfigurationError.invalidSetting(
                        "model.\(net)AttentionSides",
                        "\(net) attention at \(side)x\(side): the \(net) has feature maps of sides "
                            + "\(available.map(String.init).joined(separator: ", ")) at resolution \(resolution)"
                    )
                }
                guard channels(atSide: side) >= 8 else {
                    throw ConfigurationError.invalidSetting(
                        "model.\(net)AttentionSides",
                        "\(net) attention at \(side)x\(side) needs at least 8 channels, the map has "
                            + "\(channels(atSide: side))"
                    )
                }
            }
        }
    }
}

/// The named starting points of `sagan inspect` and `sagan train`.
public enum ModelPreset: String, CaseIterable, Codable, Sendable {
    /// The article's 128x128 model as the author's code builds it, with the article's intent where
    /// the code was wrong: SN on every layer (dense layers included), the correct SN matrix layout,
    /// u updated in the attention convs, leaky ReLU 0.02.
    case blog128
    case sagan32, sagan64, sagan256
    /// The DCGAN baseline the article starts from.
    case dcgan64
    /// A narrow 32x32 SAGAN (channels 512/side: 128 at 4x4, 16 at 32x32; attention on 16x16 maps)
    /// that trains in minutes on two cores: the default of `sagan train` and `make demo`.
    case tiny32

    public var family: ModelConfig.Family { self == .dcgan64 ? .dcgan : .sagan }

    public var defaultResolution: Int {
        switch self {
        case .sagan32, .tiny32: return 32
        case .sagan64, .dcgan64: return 64
        case .blog128: return 128
        case .sagan256: return 256
        }
    }

    /// The preset's configuration, optionally at another resolution or channel count.
    public func configuration(resolution: Int? = nil, imageChannels: Int = 3) throws -> ModelConfig {
        let size = resolution ?? defaultResolution
        var config: ModelConfig
        switch family {
        case .sagan:
            config = ModelConfig(
                family: .sagan, resolution: size, imageChannels: imageChannels, latentSize: 128, baseWidth: 2048,
                generatorAttentionSides: [], discriminatorAttentionSides: [], attentionVariant: .paper,
                leakySlope: 0.02,
                spectralNorm: true, generatorNormalization: .shiftOnly, batchNormMomentum: 0.01, batchNormEpsilon: 1e-3,
                initializer: .glorotUniform)
            // Attention on 32x32 maps, or the largest map below that where 32x32 does not exist.
            config.generatorAttentionSides = [config.generatorSides.last { $0 <= 32 } ?? 8]
            config.discriminatorAttentionSides = [config.discriminatorSides.first { $0 <= 32 } ?? 4]
            if self == .tiny32 {
                // Narrow, with attention on 16x16 maps: a 32x32 map's N×N attention would cost
                // more than the rest of this small generator together.
                config.baseWidth = 512
                config.generatorAttentionSides = [16]
                config.discriminatorAttentionSides = [16]
            }
        case .dcgan:
            config = ModelConfig(
                family: .dcgan, resolution: size, imageChannels: imageChannels, latentSize: 100, baseWidth: 2048,
                generatorAttentionSides: [], discriminatorAttentionSides: [], attentionVariant: .paper, leakySlope: 0.2,
                spectralNorm: false, generatorNormalization: .scaleAndShift, batchNormMomentum: 0.1,
                batchNormEpsilon: 1e-5,
                initializer: .normal(standardDeviation: 0.02))
        }
        try config.validate()
        return config
    }
}

/// An Int field that files written before it existed lack: decoded as 0 when absent.
@propertyWrapper
public struct ZeroIfAbsent: Codable, Hashable, Sendable {
    public var wrappedValue: Int

    public init(wrappedValue: Int) { self.wrappedValue = wrappedValue }

    public init(from decoder: Decoder) throws { wrappedValue = try decoder.singleValueContainer().decode(Int.self) }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

extension KeyedDecodingContainer {
    /// Synthesized decoders call this for `ZeroIfAbsent` fields: an absent key is 0, not an error.
    public func decode(_ type: ZeroIfAbsent.Type, forKey key: Key) throws -> ZeroIfAbsent {
        try decodeIfPresent(type, forKey: key) ?? ZeroIfAbsent(wrappedValue: 0)
    }
}
