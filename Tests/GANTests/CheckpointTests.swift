import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import NeuralNet
import Testing

@Suite("Model checkpoints")
struct CheckpointTests {
    @Test func aSavedPairLoadsBackExactly() throws {
        var config = try ModelPreset.sagan32.configuration(imageChannels: 1)
        config.baseWidth = 256
        config.attentionVariant = .biggan
        config.generatorAttentionSides = [16]
        config.discriminatorAttentionSides = [8]
        try config.validate()
        let (g, d) = build(config, seed: 5)
        var random = RandomGenerator(seed: 6)
        let z = Tensor.randomNormal([2, 128], generator: &random)
        _ = noGrad { d(g(z)) }  // move SN vectors and BN statistics away from their initial values
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("pair.safetensors")
        try ModelCheckpoint.save(generator: g, discriminator: d, preset: "sagan32", extra: ["step": "7"], to: url)

        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.metadata["preset"] == "sagan32" && file.metadata["step"] == "7")
        #expect(file.metadata["resolution"] == "32" && file.metadata["image_channels"] == "1")
        #expect(file.metadata["latent_size"] == "128" && file.metadata["attention_variant"] == "biggan")
        #expect(file.names.contains("G.blocks.2.theta.weight_u") && file.names.contains("D.head.weight"))

        let (loadedConfig, loadedG, loadedD) = try ModelCheckpoint.load(from: url)
        #expect(loadedConfig == config)
        for module in [g, loadedG] as [any Module] { module.setTraining(false) }
        for module in [d, loadedD] as [any Module] { module.setTraining(false) }
        #expect(noGrad { g(z) }.scalars == noGrad { loadedG(z) }.scalars)
        let images = noGrad { g(z) }
        #expect(noGrad { d(images) }.scalars == noGrad { loadedD(images) }.scalars)
    }

    @Test func aCheckpointOfAnotherModelIsRefusedByName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("other.safetensors")
        try SafeTensorsFile.write([("G.project.weight", Tensor.zeros([2, 2]))], metadata: ["format": "pt"], to: url)
        #expect(
            throws: DataError(
                .wrongKind, "",
                "\(url.path) is a safetensors file that is not a sagan pack, checkpoint or export; checkpoint "
                    + "needs a training or model checkpoint")
        ) {
            _ = try ModelCheckpoint.load(from: url)
        }
    }
}
