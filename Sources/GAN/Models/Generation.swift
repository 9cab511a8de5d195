import Autodiff
import Datasets
import FileFormats
import Foundation
import NeuralNet

/// Latent codes addressed by seed: the same seed always gives the same z, and so the same image.
public enum LatentCodes {
    /// z for `seed`: N(0, I) from the seed's own stream; with `truncation` T, components beyond
    /// ±T are redrawn (the truncation trick) from the same stream, so the result is still a
    /// function of (seed, T).
    public static func z(seed: Int, size: Int, truncation: Float? = nil) -> [Float] {
        var generator = RandomGenerator(seed: UInt64(bitPattern: Int64(seed))).derived(purpose: 0x5EED)
        var values = generator.normal(count: size)
        if let truncation {
            for index in values.indices {
                var attempts = 0
                while abs(values[index]) > truncation && attempts < 1000 {
                    values[index] = generator.normal(count: 1)[0]
                    attempts += 1
                }
                if abs(values[index]) > truncation { values[index] = max(-truncation, min(truncation, values[index])) }
            }
        }
        return values
    }

    /// Spherical interpolation between a and b (linear where they are nearly parallel).
    public static func slerp(_ a: [Float], _ b: [Float], _ t: Float) -> [Float] {
        let normA = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let normB = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let cosine = max(-1, min(1, zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } / max(normA * normB, 1e-12)))
        let angle = acos(cosine)
        guard sin(angle) > 1e-5 else { return zip(a, b).map { $0 + t * ($1 - $0) } }
        let wa = sin((1 - t) * angle) / sin(angle)
        let wb = sin(t * angle) / sin(angle)
        return zip(a, b).map { wa * $0 + wb * $1 }
    }

    /// `count` codes from `a` to `b` (both included) at equal steps along the great circle between them.
    public static func interpolation(_ a: [Float], _ b: [Float], count: Int) -> [[Float]] {
        (0..<count).map { slerp(a, b, Float($0) / Float(max(count - 1, 1))) }
    }

    /// Parses "0-63", "7", "1,5,9" or "0-3,10" into seeds.
    public static func parseSeeds(_ text: String) throws -> [Int] {
        var seeds: [Int] = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            if bounds.count == 1, let seed = Int(bounds[0]) {
                seeds.append(seed)
            } else if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low <= high,
                high - low < 100_000
            {
                seeds += Array(low...high)
            } else {
                throw ConfigurationError.invalidArgument(
                    .seeds, "\(Setting.seeds): \"\(part)\" is not a seed or a range like 0-63")
            }
        }
        guard !seeds.isEmpty else {
            throw ConfigurationError.invalidArgument(.seeds, "\(Setting.seeds): no seeds given")
        }
        guard seeds.count <= 100_000 else {
            throw ConfigurationError.invalidArgument(
                .seeds, "\(Setting.seeds): \(seeds.count) seeds; at most 100,000 at once")
        }
        return seeds
    }

    /// Refuses `count` images of `config`'s size at once when they would take more than half the
    /// memory available (as floats and as pixels); `flag` names the setting at fault.
    public static func checkCount(_ count: Int, of config: ModelConfig, setting: Setting) throws {
        let bytes = count.multipliedReportingOverflow(
            by: config.imageChannels * config.resolution * config.resolution * 5)
        let available = Engine.availableMemoryBytes ?? (8 << 30)
        guard !bytes.overflow, bytes.partialValue <= available / 2 else {
            let most = available / 2 / (config.imageChannels * config.resolution * config.resolution * 5)
            throw ConfigurationError.invalidArgument(
                setting,
                "\(setting): \(count) images of \(config.resolution)x\(config.resolution) at once do not fit in memory "
                    + "(at most \(most) here)")
        }
    }
}

/// A generator read from any file the tool writes: a training checkpoint (G or G-EMA), a model
/// checkpoint, or an export.
public struct LoadedGenerator {
    public let generator: Generator
    public let config: ModelConfig
    public let metadata: [String: String]
    public let file: SafeTensorsFile
    /// D, when the file has one (attention pictures on real images need it).
    public let discriminator: Discriminator?

    public init(contentsOf url: URL, ema: Bool) throws {
        try Self.requireGenerator(url, setting: .checkpoint)
        let file = try SafeTensorsFile(contentsOf: url)
        do { try file.checkFinite() } catch let error as SafeTensorsError { throw error.inFile(url.path) }
        guard let encoded = file.metadata["model_config"],
            let config = try? JSONDecoder().decode(ModelConfig.self, from: Data(encoded.utf8))
        else {
            throw SafeTensorsError.wrongKind(
                "no model configuration in the metadata; not a sagan checkpoint or export", file: url.path)
        }
        try config.validate()
        let prefix: String
        if ema {
            guard file.names.contains(where: { $0.hasPrefix("G_ema.") }) else {
                throw SafeTensorsError.wrongKind(
                    "\(Setting.ema): this file has no moving average of G (train with \(Setting.ema))", file: url.path)
            }
            prefix = "G_ema."
        } else {
            prefix = "G."
        }
        var unused = RandomGenerator(seed: 0)
        let generator = Generator(config: config, generator: &unused)
        try generator.loadState(from: file, prefix: prefix, source: url.path)
        generator.setTraining(false)
        var discriminator: Discriminator?
        if file.names.contains(where: { $0.hasPrefix("D.") }) {
            let d = Discriminator(config: config, generator: &unused)
            try d.loadState(from: file, prefix: "D.", source: url.path)
            d.setTraining(false)
            discriminator = d
        }
        self.generator = generator
        self.config = config
        self.metadata = file.metadata
        self.file = file
        self.discriminator = discriminator
    }

    /// Refuses files of another kind (a pack, an image, …) by their content, naming `flag`; damaged
    /// files go on to the reader, whose message says what is wrong with them.
    static func requireGenerator(_ url: URL, setting: Setting, needsDiscriminator: Bool = false) throws {
        let needs =
            needsDiscriminator ? "a training or model checkpoint" : "a training checkpoint, model checkpoint or export"
        // relativePath: the path as the user gave it, for the message.
        try InputKind.require(url.relativePath, setting: setting, needs: needs) { kind in
            kind == .other
                || (needsDiscriminator ? [.trainingCheckpoint, .modelCheckpoint].contains(kind) : kind.holdsGenerator)
        }
    }

    /// BigGAN's standing statistics: replaces G's batch-norm running means and variances by their
    /// averages over `batches` batches of `batchSize` fresh z (and random classes), computed by G in
    /// evaluation mode but for its batch norms. The exponential averages of training lag behind
    /// weights that still move; these describe the weights as they are. Deterministic in `seed`.
    public func useStandingStatistics(batches: Int = 16, batchSize: Int = 64, seed: UInt64 = 0) {
        let norms = generator.namedModules().compactMap { $0.module as? BatchNorm2d }
        guard !norms.isEmpty, batches > 0 else { return }
        let momenta = norms.map(\.momentum)
        defer {
            for (norm, momentum) in zip(norms, momenta) { (norm.momentum, norm.isTraining) = (momentum, false) }
        }
        var random = RandomGenerator(seed: seed).derived(purpose: 0x57A4D)
        let (size, classes) = (config.latentSize, config.classCount)
        for batch in 1...batches {
            for norm in norms { (norm.momentum, norm.isTraining) = (1 / Float(batch), true) }
            let z = Tensor(shape: [batchSize, size], scalars: random.normal(count: batchSize * size))
            let labels =
                classes > 0 ? random.uniform(count: batchSize).map { min(Int($0 * Float(classes)), classes - 1) } : nil
            _ = noGrad { generator(z, labels: labels) }
        }
    }

    /// Images (N, C, R, R) in [−1, 1] for the given latent codes (and classes).
    public func images(_ codes: [[Float]], labels: [Int]? = nil) -> Tensor {
        let z = Tensor(shape: [codes.count, config.latentSize], scalars: codes.flatMap { $0 })
        return noGrad { generator(z, labels: labels) }
    }

    /// Checks that `classIndex` suits the model: required by class-conditional models, refused by others.
    public func checkClass(_ classIndex: Int?) throws {
        if config.classCount > 0 {
            guard let classIndex, (0..<config.classCount).contains(classIndex) else {
                throw ConfigurationError.invalidArgument(
                    .classIndex,
                    "\(Setting.classIndex): this model is class-conditional; give a class from 0 to "
                        + "\(config.classCount - 1)"
                )
            }
        } else if classIndex != nil {
            throw ConfigurationError.invalidArgument(
                .classIndex, "\(Setting.classIndex): this model is not class-conditional")
        }
    }

    /// One 8-bit picture per code, generated `chunk` codes at a time (all of `classIndex`, if given).
    public func pictures(_ codes: [[Float]], classIndex: Int? = nil, chunk: Int = 64) -> [PixelImage] {
        stride(from: 0, to: codes.count, by: chunk).flatMap { start in
            let part = Array(codes[start..<min(start + chunk, codes.count)])
            // (n, C, R, R)
            let images = self.images(part, labels: classIndex.map { [Int](repeating: $0, count: part.count) })
            return part.indices.map { SampleGrid.image(images.sliced(alongAxis: 0, $0..<($0 + 1)), gap: 0) }
        }
    }

    /// The codes' images in one grid of `columns` columns, generated `chunk` codes at a time.
    public func grid(_ codes: [[Float]], columns: Int, classIndex: Int? = nil, chunk: Int = 64) -> PixelImage {
        let parts = stride(from: 0, to: codes.count, by: chunk).map { start in
            let part = Array(codes[start..<min(start + chunk, codes.count)])
            return images(part, labels: classIndex.map { [Int](repeating: $0, count: part.count) })  // (n, C, R, R)
        }
        return SampleGrid.image(
            parts.count == 1 ? parts[0] : Tensor.concatenated(parts, alongAxis: 0), columns: columns)
    }
}

/// Writes G alone for use elsewhere: spectral normalisation folded into the weights (W/σ with the
/// trained u and v), BN running statistics kept, PyTorch layouts and names, and a model card.
public enum GeneratorExport {
    public static func write(_ loaded: LoadedGenerator, ema: Bool, to url: URL) throws {
        var folded = loaded.config
        folded.spectralNorm = false
        var unused = RandomGenerator(seed: 0)
        let plain = Generator(config: folded, generator: &unused)
        let source = loaded.generator
        source.setTraining(false)
        // Same names on both sides, except the SN vectors the plain generator does not have.
        let normalized = Dictionary(
            uniqueKeysWithValues: source.spectrallyNormalizedLayers().map { ($0.name + ".weight", $0.layer) })
        let sourceParameters = Dictionary(
            uniqueKeysWithValues: source.namedParameters().map { ($0.name, $0.parameter) })
        let sourceBuffers = Dictionary(uniqueKeysWithValues: source.namedBuffers().map { ($0.name, $0.buffer) })
        noGrad {
            for (name, parameter) in plain.namedParameters() {
                parameter.assign(normalized[name]?.effectiveWeight ?? sourceParameters[name]!.value)
            }
            for (name, buffer) in plain.namedBuffers() { buffer.assign(sourceBuffers[name]!.value) }
        }
        let card: JSONValue = [
            "preset": JSONValue(loaded.metadata["preset"] ?? ""), "resolution": JSONValue(folded.resolution),
            "image_channels": JSONValue(folded.imageChannels), "latent_size": JSONValue(folded.latentSize),
            "attention_variant": JSONValue(folded.attentionVariant.rawValue),
            "class_count": JSONValue(folded.classCount),
            "training_steps": JSONValue(Int(loaded.metadata["step"] ?? "") ?? 0),
            "dataset_digest": JSONValue(loaded.metadata["dataset_digest"] ?? ""), "moving_average": .bool(ema),
            "spectral_norm": loaded.config.spectralNorm ? "folded into the weights" : "none",
            "z": "N(0, I) of latent_size; output (N, C, H, W) in [-1, 1] after tanh",
        ]
        var metadata = try ModelCheckpoint.metadata(for: folded, preset: loaded.metadata["preset"])
        metadata["kind"] = "export"
        metadata["model_card"] = String(decoding: card.serialized(), as: UTF8.self)
        if let step = loaded.metadata["step"] { metadata["step"] = step }
        if let digest = loaded.metadata["dataset_digest"] { metadata["dataset_digest"] = digest }
        try SafeTensorsFile.write(plain.stateTensors(prefix: "G."), metadata: metadata, checksum: true, to: url)
    }
}
