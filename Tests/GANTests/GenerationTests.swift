import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import NeuralNet
import TestSupport
import Testing

@Suite("Generation, attention pictures and export")
struct GenerationTests {
    /// A small trained pair saved as a training checkpoint (3 steps, with G-EMA).
    func trainedCheckpoint(_ folder: URL, variant: AttentionVariant = .paper) throws -> URL {
        let dataset = try makeBlobPack(folder)
        var config = try smallTrainConfig(ema: true)
        config.model.attentionVariant = variant
        try config.validate()
        let trainer = Trainer(config: config)
        let loader = try BatchLoader(dataset: dataset, options: .init(batchSize: 4))
        for _ in 0..<3 { _ = try trainer.trainStep { try loader.next() } }
        for layer in trainer.generator.attentionLayers + trainer.discriminator.attentionLayers {
            layer.gamma.assign(Tensor(0.8))
        }
        let url = folder.appendingPathComponent("trained.safetensors")
        try TrainingCheckpoint.save(trainer, datasetDigest: dataset.sourceDigest, commandLine: "test", to: url)
        return url
    }

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("generation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func aSeedAlwaysGivesTheSameImage() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let checkpoint = try trainedCheckpoint(folder)
        let first = try LoadedGenerator(contentsOf: checkpoint, ema: false)
        let again = try LoadedGenerator(contentsOf: checkpoint, ema: false)
        let z = [LatentCodes.z(seed: 7, size: 128), LatentCodes.z(seed: 8, size: 128)]
        #expect(first.images(z).scalars == again.images(z).scalars)
        // A seed's image does not depend on the batch it is drawn in.
        let alone = first.images([LatentCodes.z(seed: 8, size: 128)]).scalars
        let inBatch = first.images(z).sliced(alongAxis: 0, 1..<2).scalars
        #expect(zip(alone, inBatch).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(LatentCodes.z(seed: 7, size: 128) != LatentCodes.z(seed: 8, size: 128))
        #expect(try LoadedGenerator(contentsOf: checkpoint, ema: true).images(z).scalars != first.images(z).scalars)
    }

    /// Standing statistics replace G's BN running statistics and nothing else, the same for a seed.
    @Test func standingStatisticsRecomputeOnlyBatchNorm() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let checkpoint = try trainedCheckpoint(folder)
        let (first, again) = (
            try LoadedGenerator(contentsOf: checkpoint, ema: false),
            try LoadedGenerator(contentsOf: checkpoint, ema: false)
        )
        let before = Dictionary(
            uniqueKeysWithValues: first.generator.stateTensors().map { ($0.name, $0.tensor.scalars) })
        let norms = first.generator.namedModules().compactMap { $0.module as? BatchNorm2d }
        #expect(!norms.isEmpty)
        let momenta = norms.map(\.momentum)
        first.useStandingStatistics(batches: 3, batchSize: 8, seed: 4)
        again.useStandingStatistics(batches: 3, batchSize: 8, seed: 4)
        #expect(norms.map(\.momentum) == momenta)
        #expect(first.generator.namedModules().allSatisfy { !$0.module.isTraining })
        for (name, tensor) in first.generator.stateTensors() {
            let isStatistic = name.hasSuffix("running_mean") || name.hasSuffix("running_var")
            #expect((tensor.scalars != before[name]) == isStatistic, "\(name)")
        }
        #expect(
            first.generator.stateTensors().map(\.tensor.scalars) == again.generator.stateTensors().map(\.tensor.scalars)
        )
    }

    @Test func latentCodeTools() throws {
        let truncated = LatentCodes.z(seed: 3, size: 1000, truncation: 0.5)
        #expect(
            truncated.allSatisfy { abs($0) <= 0.5 } && truncated == LatentCodes.z(seed: 3, size: 1000, truncation: 0.5))
        let a = LatentCodes.z(seed: 1, size: 64)
        let b = LatentCodes.z(seed: 2, size: 64)
        #expect(zip(LatentCodes.slerp(a, b, 0), a).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(zip(LatentCodes.slerp(a, b, 1), b).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(try LatentCodes.parseSeeds("0-3,10,7") == [0, 1, 2, 3, 10, 7])
        #expect(throws: ConfigurationError.self) { try LatentCodes.parseSeeds("5-2") }
    }

    @Test(arguments: [AttentionVariant.paper, .biggan])
    func attentionPicturesShowDistributions(variant: AttentionVariant) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let loaded = try LoadedGenerator(contentsOf: try trainedCheckpoint(folder, variant: variant), ema: false)
        let attention = loaded.generator.attentionLayers[0]
        attention.recordsAttention = true
        let image = loaded.images([LatentCodes.z(seed: 1, size: 128)])
        let queries = [(x: 3, y: 5), (x: 20, y: 30)]
        let maps = try AttentionPicture.maps(attention, queries: queries, resolution: 32)
        // G attends on 16x16 maps; the BigGAN variant's keys live on the pooled 8x8 grid.
        #expect(maps.allSatisfy { $0.count == (variant == .paper ? 256 : 64) })
        #expect(maps.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 })
        let picture = AttentionPicture.compose(
            image: AttentionPicture.rgb(image.reshaped(to: [1, 32, 32])), queries: queries, maps: maps)
        let decoded = try ImageCodec.decode(try ImageCodec.encodePNG(picture), path: "attention.png")
        #expect(
            decoded.image.width == 3 * 192 + 4 * 6 && decoded.image.height == 192 + 12 && decoded.image.channels == 3)
        #expect(throws: ConfigurationError.self) {
            try AttentionPicture.maps(attention, queries: [(x: 40, y: 1)], resolution: 32)
        }
    }

    @Test func theExportLoadsBackAndMatches() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let checkpoint = try trainedCheckpoint(folder)
        for ema in [false, true] {
            let loaded = try LoadedGenerator(contentsOf: checkpoint, ema: ema)
            let export = folder.appendingPathComponent("g\(ema).safetensors")
            try GeneratorExport.write(loaded, ema: ema, to: export)
            let file = try SafeTensorsFile(contentsOf: export)
            #expect(
                file.metadata["kind"] == "export"
                    && file.names.allSatisfy { $0.hasPrefix("G.") && !$0.contains("weight_u") })
            let card = try JSONValue(parsing: try #require(file.metadata["model_card"]))
            #expect(
                card["training_steps"]?.int == 3 && card["latent_size"]?.int == 128
                    && card["attention_variant"]?.string == "paper")
            let reloaded = try LoadedGenerator(contentsOf: export, ema: false)
            #expect(!reloaded.config.spectralNorm && reloaded.discriminator == nil)
            let z = (0..<3).map { LatentCodes.z(seed: $0, size: 128) }
            let expected = loaded.images(z).scalars
            let actual = reloaded.images(z).scalars
            #expect(zip(expected, actual).map { abs($0 - $1) }.max()! < 1e-5)
        }
    }
}
