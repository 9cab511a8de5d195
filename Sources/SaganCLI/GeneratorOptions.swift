import ArgumentParser
import FileFormats
import Foundation
import GAN

/// The generator to use, for the commands that draw with one (generate, export, inspect attention).
struct GeneratorOptions: ParsableArguments {
    @Option(help: "A training checkpoint, model checkpoint or export.") var checkpoint: String
    @Flag(help: "Use the moving average of G (checkpoints trained with --ema).") var ema = false

    /// Opens the checkpoint or export, as a one-line error naming --checkpoint when it cannot.
    func load() throws -> LoadedGenerator { try Self.load(checkpoint, ema: ema) }

    /// `load()` for commands where --checkpoint is one choice among others (eval's --fake).
    static func load(_ checkpoint: String, ema: Bool) throws -> LoadedGenerator {
        do {
            return try LoadedGenerator(contentsOf: URL(fileURLWithPath: checkpoint), ema: ema)
        } catch let error as SafeTensorsError {
            throw ValidationError("--checkpoint: \(error.description)")
        } catch let error as ConfigurationError {
            throw ValidationError("--checkpoint: \(error.description)")
        }
    }
}
