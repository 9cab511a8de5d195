import ArgumentParser
import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import NeuralNet

/// `sagan inspect`: look inside models (and, later, checkpoints and attention maps).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Look inside a model: its layers, or where its attention looks.",
        subcommands: [InspectModel.self, InspectAttention.self], defaultSubcommand: InspectModel.self)
}

extension ModelPreset: ExpressibleByArgument {}

/// Prints G's and D's layers with output shapes, parameters and multiply-accumulates per image.
struct InspectModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Print each layer's output shape, parameter count and MACs per image, with totals.")

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
        let side = config.resolution
        print(
            "\(checkpoint ?? preset.rawValue): \(config.family.rawValue), \(side)x\(side)x\(config.imageChannels), "
                + "z \(config.latentSize), attention \(config.attentionVariant.rawValue) "
                + "at G \(config.generatorAttentionSides) "
                + "D \(config.discriminatorAttentionSides), spectral norm \(config.spectralNorm ? "on" : "off")")
        printTable(
            "Generator", generator.summary(), buffers: generator.namedBuffers().reduce(0) { $0 + $1.buffer.value.count }
        )
        printTable(
            "Discriminator", discriminator.summary(),
            buffers: discriminator.namedBuffers().reduce(0) { $0 + $1.buffer.value.count })
    }

    func printTable(_ title: String, _ rows: [LayerSummary], buffers: Int) {
        print("\n\(title)")
        let header = [
            pad("layer", 10), pad("kind", 46), pad("output", 16), pad("parameters", 12, right: true),
            pad("MACs/image", 14, right: true),
        ]
        print(header.joined(separator: "  "))
        for row in rows {
            print(
                [
                    pad(row.name, 10), pad(row.kind, 46),
                    pad(row.outputShape.map(String.init).joined(separator: "x"), 16),
                    pad(grouped(row.parameters), 12, right: true),
                    pad(grouped(row.multiplyAccumulates), 14, right: true),
                ].joined(separator: "  "))
        }
        let parameters = rows.reduce(0) { $0 + $1.parameters }
        let macs = rows.reduce(0) { $0 + $1.multiplyAccumulates }
        print(
            [
                pad("total", 10), pad("(+ \(grouped(buffers)) buffer elements)", 46), pad("", 16),
                pad(grouped(parameters), 12, right: true),
                pad(grouped(macs), 14, right: true),
            ].joined(separator: "  "))
        print(
            String(
                format: "%@: %.3f M parameters, %.1f M MACs per image", title, Double(parameters) / 1e6,
                Double(macs) / 1e6))
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

/// `sagan inspect attention`: where an attention layer looks, for chosen query pixels.
struct InspectAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Draw an image with query points and, for each, the attention map of one layer as a heatmap.")

    @OptionGroup var model: GeneratorOptions
    @Option(help: "The seed of the generated image.") var seed = 0
    @Option(help: "A query pixel x,y (repeat for more).") var query: [QueryPoint] = []
    @Option(help: "Which attention layer, counting from 0 in G (or in D with --image).") var layer = 0
    @Option(help: "The PNG to write.") var out: String
    @Option(help: "An image file: show D's attention on it instead of G's on a generated image.") var image: String?
    @Option(name: .customLong("class"), help: "The class, for class-conditional models.") var classIndex: Int?

    func run() throws {
        try checkDistinct(
            output: URL(fileURLWithPath: out),
            from: ([model.checkpoint] + [image].compactMap { $0 }).map(URL.init(fileURLWithPath:)))
        let loaded = try model.load()
        let config = loaded.config
        let queries =
            query.isEmpty
            ? AttentionInspection.defaultQueries(resolution: config.resolution) : query.map { (x: $0.x, y: $0.y) }
        for (net, layers) in [
            ("G", loaded.generator.attentionLayers as [any SelfAttentionLayer]),
            ("D", (loaded.discriminator?.attentionLayers ?? []) as [any SelfAttentionLayer]),
        ] {
            for (index, attention) in layers.enumerated() {
                print("\(net) attention \(index): γ = \(attention.gamma.value.scalar)")
            }
        }
        let subject: AttentionSubject
        if let image {
            do {
                subject = .discriminator(
                    image: try AttentionInspection.modelInput(
                        contentsOf: image, resolution: config.resolution, channels: config.imageChannels))
            } catch let error as DataError {
                throw flagged("--image", error)
            }
        } else {
            subject = .generator(seed: seed)
        }
        let inspection = try AttentionInspection(
            loaded, subject: subject, layer: layer, queries: queries, classIndex: classIndex)
        try writeAtomically(try ImageCodec.encodePNG(inspection.picture), to: URL(fileURLWithPath: out))
        let side = inspection.keyGridSide
        print("wrote \(out): \(queries.count) queries on a \(side)x\(side) key grid")
    }
}
