import Autodiff
import Datasets
import FileFormats
import Foundation
import NeuralNet
import Optimizers

/// A complete training state in one safetensors file (docs/formats.md §3): `G.*`, `D.*`, `G_ema.*`
/// parameters and buffers, Adam moments as `opt_G.m.<name>` / `opt_G.v.<name>` / `opt_D.…`, and in
/// the metadata the step, images seen, optimiser steps and learning rates, the z generator, the data
/// cursor, the resolved config and the dataset digest. Restoring it continues bit for bit.
public enum TrainingCheckpoint {
    /// Writes the state to `url` atomically; `extraMetadata` adds keys (the best evaluation's).
    public static func save(
        _ trainer: Trainer, datasetDigest: String, commandLine: String, extraMetadata: [String: String] = [:],
        to url: URL
    ) throws {
        let tensors = trainer.stateTensors()
        let encoder = JSONEncoder.sorted
        var metadata = try ModelCheckpoint.metadata(for: trainer.config.model, preset: trainer.config.preset.rawValue)
        metadata["kind"] = "training"
        metadata["step"] = String(trainer.step)
        metadata["images_seen"] = String(trainer.imagesSeen)
        metadata["opt_G.step"] = String(trainer.optimizerG.stepCount)
        metadata["opt_D.step"] = String(trainer.optimizerD.stepCount)
        metadata["opt_G.lr"] = String(trainer.optimizerG.learningRate.bitPattern)
        metadata["opt_D.lr"] = String(trainer.optimizerD.learningRate.bitPattern)
        metadata["rng_state"] = String(decoding: try encoder.encode(trainer.noise), as: UTF8.self)
        metadata["data_cursor"] = String(decoding: try encoder.encode(trainer.cursor), as: UTF8.self)
        metadata["config"] = String(decoding: try encoder.encode(trainer.config), as: UTF8.self)
        metadata["dataset_digest"] = datasetDigest
        metadata["command_line"] = commandLine
        metadata["created"] = ISO8601DateFormatter().string(from: Date())
        metadata.merge(extraMetadata) { _, extra in extra }
        try SafeTensorsFile.write(tensors, metadata: metadata, checksum: true, to: url)
    }

    /// The training config a checkpoint was written with.
    public static func config(of file: SafeTensorsFile, source: String) throws -> TrainConfig {
        guard file.metadata["kind"] == "training", let encoded = file.metadata["config"] else {
            throw SafeTensorsError.wrongKind("not a training checkpoint", file: source)
        }
        do {
            return try JSONDecoder().decode(TrainConfig.self, from: Data(encoded.utf8))
        } catch {
            throw SafeTensorsError.wrongKind("unreadable training config: \(error)", file: source)
        }
    }

    /// A trainer in exactly the saved state. Every tensor is checked before anything is used.
    public static func load(_ url: URL) throws -> (trainer: Trainer, datasetDigest: String) {
        try load(try SafeTensorsFile(contentsOf: url), source: url)
    }

    /// The same from a checkpoint file's bytes, read elsewhere (rank 0 sends them to the other ranks).
    public static func load(_ data: Data, source url: URL) throws -> (trainer: Trainer, datasetDigest: String) {
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(data)
            try file.verifyChecksum()
        } catch let error as SafeTensorsError {
            throw error.inFile(url.path)
        }
        return try load(file, source: url)
    }

    private static func load(_ file: SafeTensorsFile, source url: URL) throws -> (
        trainer: Trainer, datasetDigest: String
    ) {
        let config = try config(of: file, source: url.path)
        do { try file.checkFinite() } catch let error as SafeTensorsError { throw error.inFile(url.path) }
        let trainer = Trainer(config: config)
        try trainer.generator.loadState(from: file, prefix: "G.", source: url.path)
        try trainer.discriminator.loadState(from: file, prefix: "D.", source: url.path)
        if let ema = trainer.generatorEMA { try ema.loadState(from: file, prefix: "G_ema.", source: url.path) }
        func number<T: LosslessStringConvertible>(_ key: String, _ type: T.Type) throws -> T {
            guard let text = file.metadata[key], let value = T(text) else {
                throw SafeTensorsError.wrongKind("metadata \"\(key)\" is missing or invalid", file: url.path)
            }
            return value
        }
        func json<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            guard let text = file.metadata[key], let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8))
            else {
                throw SafeTensorsError.wrongKind("metadata \"\(key)\" is missing or invalid", file: url.path)
            }
            return value
        }
        for (prefix, module) in [
            ("opt_G", trainer.generator as any Module), ("opt_D", trainer.discriminator as any Module),
        ] {
            var moments: [(parameter: Parameter, first: Tensor, second: Tensor)] = []
            for (name, parameter) in module.namedParameters() where file.entries["\(prefix).m.\(name)"] != nil {
                let first = try file.tensor("\(prefix).m.\(name)")
                let second = try file.tensor("\(prefix).v.\(name)")
                guard first.shape == parameter.shape, second.shape == parameter.shape else {
                    throw SafeTensorsError.wrongShape(
                        "\(prefix).m.\(name)", found: first.shape, expected: parameter.shape, file: url.path)
                }
                moments.append((parameter, first, second))
            }
            let steps = try number("\(prefix).step", Int.self)
            let rate = Float(bitPattern: try number("\(prefix).lr", UInt32.self))
            if prefix == "opt_G" {
                trainer.optimizerG.restore(stepCount: steps, moments: moments)
                trainer.optimizerG.learningRate = rate
            } else {
                trainer.optimizerD.restore(stepCount: steps, moments: moments)
                trainer.optimizerD.learningRate = rate
            }
        }
        trainer.step = try number("step", Int.self)
        trainer.imagesSeen = try number("images_seen", Int.self)
        trainer.noise = try json("rng_state", RandomGenerator.self)
        trainer.cursor = try json("data_cursor", LoaderCursor.self)
        return (trainer, file.metadata["dataset_digest"] ?? "")
    }
}

extension Trainer {
    /// Every tensor of the training state by its name in a checkpoint: G's, D's and G-EMA's
    /// parameters and buffers, then both Adams' moments.
    public func stateTensors() -> [(String, Tensor)] {
        var tensors = generator.stateTensors(prefix: "G.") + discriminator.stateTensors(prefix: "D.")
        if let generatorEMA { tensors += generatorEMA.stateTensors(prefix: "G_ema.") }
        for (prefix, module, optimizer) in [
            ("opt_G", generator as any Module, optimizerG), ("opt_D", discriminator as any Module, optimizerD),
        ] {
            for (name, parameter) in module.namedParameters() {
                guard let (first, second) = optimizer.moments(of: parameter) else { continue }
                tensors.append(("\(prefix).m.\(name)", first))
                tensors.append(("\(prefix).v.\(name)", second))
            }
        }
        return tensors
    }
}
