import ArgumentParser
import FileFormats
import Foundation
import GAN

/// `sagan export`: G alone, SN folded in, with a model card.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            "Write G alone (spectral norm folded into the weights) with a model card, for PyTorch and other tools.")

    @OptionGroup var model: GeneratorOptions
    @Option(help: "The safetensors file to write.") var out: String

    func run() throws {
        try checkDistinct(output: URL(fileURLWithPath: out), from: [URL(fileURLWithPath: model.checkpoint)])
        let loaded = try model.load()
        try GeneratorExport.write(loaded, ema: model.ema, to: URL(fileURLWithPath: out))
        print("wrote G (\(loaded.generator.parameterCount) parameters) to \(out)")
    }
}
