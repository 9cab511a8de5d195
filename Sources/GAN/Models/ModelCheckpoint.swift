import Autodiff
import FileFormats
import Foundation
import NeuralNet

/// The project's version, recorded in every file it writes.
public enum ProjectInfo {
    public static let version = "0.1.0"
}

/// A generator/discriminator pair saved as one safetensors file: parameters and buffers under
/// `G.<name>` and `D.<name>` (PyTorch layouts and names), with the model configuration in
/// `__metadata__` so the file alone rebuilds the networks.
public enum ModelCheckpoint {
    /// Metadata describing a model: the preset, the settings a reader needs at a glance, and the
    /// full configuration as JSON.
    public static func metadata(for config: ModelConfig, preset: String?) throws -> [String: String] {
        let encoded = String(decoding: try JSONEncoder.sorted.encode(config), as: UTF8.self)
        var metadata = [
            "format": "pt",
            "kind": "checkpoint",
            "model_config": encoded,
            "resolution": String(config.resolution),
            "image_channels": String(config.imageChannels),
            "latent_size": String(config.latentSize),
            "attention_variant": config.attentionVariant.rawValue,
            "family": config.family.rawValue,
            "tool_version": ProjectInfo.version,
        ]
        if let preset { metadata["preset"] = preset }
        return metadata
    }

    /// Writes G and D (atomically) to `url`; `extra` metadata is added to the model's.
    public static func save(
        generator: Generator, discriminator: Discriminator, preset: String?, extra: [String: String] = [:],
        to url: URL
    ) throws {
        var metadata = try metadata(for: generator.config, preset: preset)
        metadata.merge(extra) { _, new in new }
        try SafeTensorsFile.write(
            generator.stateTensors(prefix: "G.") + discriminator.stateTensors(prefix: "D."),
            metadata: metadata, checksum: true, to: url)
    }

    /// Rebuilds G and D from a checkpoint file: configuration from the metadata, then every tensor.
    public static func load(from url: URL) throws -> (
        config: ModelConfig, generator: Generator, discriminator: Discriminator
    ) {
        try LoadedGenerator.requireGenerator(url, setting: .checkpoint, needsDiscriminator: true)
        let file = try SafeTensorsFile(contentsOf: url)
        guard let encoded = file.metadata["model_config"] else {
            throw SafeTensorsError.wrongKind("no model_config in the metadata; not a sagan checkpoint", file: url.path)
        }
        do { try file.checkFinite() } catch let error as SafeTensorsError { throw error.inFile(url.path) }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(encoded.utf8))
            try config.validate()
        } catch {
            throw SafeTensorsError.wrongKind("invalid model_config: \(error)", file: url.path)
        }
        var generator = RandomGenerator(seed: 0)
        let g = Generator(config: config, generator: &generator)
        let d = Discriminator(config: config, generator: &generator)
        try g.loadState(from: file, prefix: "G.", source: url.path)
        try d.loadState(from: file, prefix: "D.", source: url.path)
        return (config, g, d)
    }
}

extension JSONEncoder {
    /// Deterministic output: sorted keys.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
