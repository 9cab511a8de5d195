import FileFormats
import Foundation
import NeuralNet

/// Everything that determines a training run besides the data: the model and the optimisation.
/// Defaults live here; a JSON config file holds only differences; command-line flags apply last.
public struct TrainConfig: Codable, Hashable, Sendable {
    public enum Loss: String, Codable, Sendable, CaseIterable {
        /// L_D = mean relu(1 − D(x)) + mean relu(1 + D(G(z))), L_G = −mean D(G(z)) (SAGAN).
        case hinge
        /// L_D = mean softplus(−D(x)) + mean softplus(D(G(z))), L_G = mean softplus(−D(G(z))).
        case nonSaturating = "non-saturating"
    }

    public enum Update: String, Codable, Sendable, CaseIterable {
        /// D step(s) on a real and a detached fake batch, then a G step with fresh z (docs/model.md §7.2).
        case alternating
        /// The author's loop: one pass G(z), D(x), D(G(z)); both gradients from it, D then G applied.
        case simultaneous
    }

    public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
        /// Roll back, save a checkpoint and stop.
        case stop
        /// Roll back, drop the batch, halve both learning rates, warn, and go on.
        case skip
    }

    public var preset: ModelPreset
    public var model: ModelConfig
    public var batchSize: Int
    public var steps: Int
    public var learningRateG: Float
    public var learningRateD: Float
    public var beta1: Float
    public var beta2: Float
    public var adamEpsilon: Float
    /// D steps per G step.
    public var discriminatorSteps: Int
    public var loss: Loss
    public var update: Update
    /// Keep an exponential moving average of G's weights and sample from it.
    public var ema: Bool
    public var emaDecay: Float
    public var seed: UInt64
    public var logEvery: Int
    public var sampleEvery: Int
    public var checkpointEvery: Int
    public var keepCheckpoints: Int
    /// Images in the sample grid (a square number).
    public var sampleCount: Int
    public var horizontalFlip: Bool
    public var dequantize: Bool
    public var onNonFinite: NonFinitePolicy

    /// The defaults for a model preset, at the dataset's resolution and channels.
    public static func preset(_ preset: ModelPreset, resolution: Int, imageChannels: Int) throws -> TrainConfig {
        let model = try preset.configuration(resolution: resolution, imageChannels: imageChannels)
        let (batch, steps): (Int, Int)
        switch preset {
        case .tiny32: (batch, steps) = (64, 3000)
        case .sagan32: (batch, steps) = (64, 20000)
        case .sagan64, .dcgan64: (batch, steps) = (32, 50000)
        case .blog128: (batch, steps) = (16, 100_000)
        case .sagan256: (batch, steps) = (8, 100_000)
        }
        let dcgan = preset.family == .dcgan
        return TrainConfig(
            preset: preset, model: model, batchSize: batch, steps: steps,
            learningRateG: dcgan ? 2e-4 : 1e-4, learningRateD: dcgan ? 2e-4 : 4e-4, beta1: dcgan ? 0.5 : 0,
            beta2: dcgan ? 0.999 : 0.9,
            adamEpsilon: 1e-8, discriminatorSteps: 1, loss: dcgan ? .nonSaturating : .hinge, update: .alternating,
            ema: false, emaDecay: 0.999, seed: 0, logEvery: 10, sampleEvery: 200, checkpointEvery: 500,
            keepCheckpoints: 3,
            sampleCount: 64, horizontalFlip: false, dequantize: false, onNonFinite: .stop)
    }

    /// Applies a JSON object of differences (keys as in the encoded config, nested for `model`).
    /// A value of the wrong type or out of range is an error naming the key, the value and the type
    /// the setting needs.
    public func applying(jsonDifferences data: Data, source: String) throws -> TrainConfig {
        let parsed: JSONValue
        do {
            parsed = try JSONValue(parsing: data)
        } catch let error as JSONParseError {
            throw ConfigurationError.configFile(source, "not valid JSON: \(error)")
        }
        guard let differences = parsed.object else {
            throw ConfigurationError.configFile(source, "not a JSON object ({ \"setting\": value, … })")
        }
        var base = try JSONValue(encoding: self).object ?? [:]
        try Self.merge(differences, into: &base, path: "", source: source)
        do {
            return try JSONValue.object(base).decode(TrainConfig.self)
        } catch let error as DecodingError {
            throw ConfigurationError.configFile(source, try culprit(of: differences) ?? Self.describe(error))
        }
    }

    /// The first key of `differences` that cannot be decoded on its own, described with its value and
    /// the type of the setting (the decoder's own message does not always name the key).
    private func culprit(of differences: [String: JSONValue]) throws -> String? {
        let defaults = try JSONValue(encoding: self).object ?? [:]
        for (key, value) in differences.sorted(by: { $0.key < $1.key }) {
            if key == "model", let nested = value.object {
                for (modelKey, modelValue) in nested.sorted(by: { $0.key < $1.key }) {
                    var model = defaults["model"]?.object ?? [:]
                    model[modelKey] = modelValue
                    var single = defaults
                    single["model"] = .object(model)
                    if !Self.decodes(single) {
                        return Self.badValue("model.\(modelKey)", modelValue, Mirror(reflecting: self.model), modelKey)
                    }
                }
                continue
            }
            var single = defaults
            single[key] = value
            if !Self.decodes(single) { return Self.badValue(key, value, Mirror(reflecting: self), key) }
        }
        return nil
    }

    private static func decodes(_ object: [String: JSONValue]) -> Bool {
        (try? JSONValue.object(object).decode(TrainConfig.self)) != nil
    }

    private static func badValue(_ name: String, _ value: JSONValue, _ mirror: Mirror, _ label: String) -> String {
        let expected = mirror.children.first { $0.label == label }.map { child -> String in
            switch child.value {
            case is Int, is UInt64: return "a whole number"
            case is Float: return "a number within the 32-bit float range (±3.4e38)"
            case is Bool: return "true or false"
            case is [Int]: return "a list of whole numbers"
            case let value as any RawRepresentable: return "one of the names \(type(of: value)) takes"
            default: return "a value of type \(type(of: child.value))"
            }
        }
        return "\"\(name)\": \(value.displayText) is not \(expected ?? "valid here")"
    }

    private static func merge(
        _ differences: [String: JSONValue], into base: inout [String: JSONValue], path: String, source: String
    ) throws {
        for (key, value) in differences {
            guard let existing = base[key] else {
                throw ConfigurationError.configFile(
                    source, "unknown setting \"\(path)\(key)\"; known: \(base.keys.sorted().joined(separator: ", "))")
            }
            if var nested = existing.object, let nestedDifferences = value.object, key == "model" {
                try merge(nestedDifferences, into: &nested, path: "\(path)\(key).", source: source)
                base[key] = .object(nested)
            } else {
                base[key] = value
            }
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
            .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path.isEmpty ? "" : "\"\(path)\": ")\(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Checks every setting; the message names the one at fault.
    public func validate() throws {
        try model.validate()
        func check(_ setting: String, _ condition: Bool, _ message: String) throws {
            if !condition { throw ConfigurationError.invalidSetting(setting, message) }
        }
        try check(
            "batchSize", batchSize >= 2, "batch size \(batchSize) must be at least 2 (batch norm needs two images)")
        try check("steps", steps >= 1, "steps \(steps) must be at least 1")
        try check(
            learningRateG > 0 && learningRateG.isFinite ? "learningRateD" : "learningRateG",
            learningRateG > 0 && learningRateD > 0 && learningRateG.isFinite && learningRateD.isFinite,
            "learning rates must be positive and finite (G \(learningRateG), D \(learningRateD))")
        try check(
            (0..<1).contains(beta1) ? "beta2" : "beta1", (0..<1).contains(beta1) && (0..<1).contains(beta2),
            "Adam betas must be in [0, 1) (got \(beta1), \(beta2))")
        try check("adamEpsilon", adamEpsilon > 0, "Adam epsilon must be positive")
        try check(
            "discriminatorSteps", discriminatorSteps >= 1,
            "D steps per G step must be at least 1, got \(discriminatorSteps)")
        try check(
            "discriminatorSteps", update == .alternating || discriminatorSteps == 1,
            "the simultaneous update takes one D step per G step")
        try check("emaDecay", !ema || (emaDecay > 0 && emaDecay < 1), "EMA decay \(emaDecay) must be in (0, 1)")
        try check(
            logEvery < 1 ? "logEvery" : sampleEvery < 1 ? "sampleEvery" : "checkpointEvery",
            logEvery >= 1 && sampleEvery >= 1 && checkpointEvery >= 1,
            "log, sample and checkpoint intervals must be at least 1")
        try check("keepCheckpoints", keepCheckpoints >= 1, "keep at least one checkpoint")
        let side = sampleCount >= 1 ? Int(Double(sampleCount).squareRoot()) : 0
        try check(
            "sampleCount", sampleCount >= 1 && side * side == sampleCount && sampleCount <= 1024,
            "sampleCount \(sampleCount) must be a square number up to 1,024 (a 32x32 grid)")
    }
}
