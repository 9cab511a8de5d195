import ArgumentParser
import Autodiff
import Foundation
import GAN
import NeuralNet

/// `sagan inspect`: look inside models (and, later, checkpoints and attention maps).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Look inside a model.", subcommands: [InspectModel.self], defaultSubcommand: InspectModel.self)
}

extension ModelPreset: ExpressibleByArgument {}

/// Prints G's and D's layers with output shapes, parameters and multiply-accumulates per image.
struct InspectModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Print each layer's output shape, parameter count and MACs per image, with totals.")

    @Option(help: "Model preset: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: ModelPreset = .blog128
    @Option(help: "Image side (a power of two, 16 to 512); default: the preset's.") var resolution: Int?
    @Option(help: "Image channels: 1 or 3.") var channels = 3
    @Option(help: "Read the model from a checkpoint instead of a preset.") var checkpoint: String?

    func run() throws {
        let (config, generator, discriminator): (ModelConfig, Generator, Discriminator)
        if let checkpoint {
            (config, generator, discriminator) = try ModelCheckpoint.load(from: URL(fileURLWithPath: checkpoint))
        } else {
            do {
                config = try preset.configuration(resolution: resolution, imageChannels: channels)
            } catch let error as ConfigurationError {
                throw ValidationError("--preset \(preset.rawValue): \(error.description)")
            }
            var random = RandomGenerator(seed: 0)
            generator = Generator(config: config, generator: &random)
            discriminator = Discriminator(config: config, generator: &random)
        }
        print("\(checkpoint ?? preset.rawValue): \(config.family.rawValue), \(config.resolution)x\(config.resolution)x\(config.imageChannels), z \(config.latentSize), attention \(config.attentionVariant.rawValue) at G \(config.generatorAttentionSides) D \(config.discriminatorAttentionSides), spectral norm \(config.spectralNorm ? "on" : "off")")
        printTable("Generator", generator.summary(), buffers: generator.namedBuffers().reduce(0) { $0 + $1.buffer.value.count })
        printTable("Discriminator", discriminator.summary(), buffers: discriminator.namedBuffers().reduce(0) { $0 + $1.buffer.value.count })
    }

    func printTable(_ title: String, _ rows: [LayerSummary], buffers: Int) {
        print("\n\(title)")
        let header = [pad("layer", 10), pad("kind", 46), pad("output", 16), pad("parameters", 12, right: true), pad("MACs/image", 14, right: true)]
        print(header.joined(separator: "  "))
        for row in rows {
            print([pad(row.name, 10), pad(row.kind, 46), pad(row.outputShape.map(String.init).joined(separator: "x"), 16),
                   pad(grouped(row.parameters), 12, right: true), pad(grouped(row.multiplyAccumulates), 14, right: true)].joined(separator: "  "))
        }
        let parameters = rows.reduce(0) { $0 + $1.parameters }
        let macs = rows.reduce(0) { $0 + $1.multiplyAccumulates }
        print([pad("total", 10), pad("(+ \(grouped(buffers)) buffer elements)", 46), pad("", 16), pad(grouped(parameters), 12, right: true),
               pad(grouped(macs), 14, right: true)].joined(separator: "  "))
        print(String(format: "%@: %.3f M parameters, %.1f M MACs per image", title, Double(parameters) / 1e6, Double(macs) / 1e6))
    }
}

/// 3856372 → "3,856,372".
func grouped(_ value: Int) -> String {
    let digits = String(value)
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return result
}

func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    guard text.count < width else { return text }
    let fill = String(repeating: " ", count: width - text.count)
    return right ? fill + text : text + fill
}
