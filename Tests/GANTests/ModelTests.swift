import Autodiff
import GAN
import NeuralNet
import Testing

func build(_ config: ModelConfig, seed: UInt64 = 1) -> (Generator, Discriminator) {
    var generator = RandomGenerator(seed: seed)
    return (Generator(config: config, generator: &generator), Discriminator(config: config, generator: &generator))
}

@Suite("Models and presets")
struct ModelTests {
    @Test func blog128MatchesTheAuthorsCounts() throws {
        let (g, d) = build(try ModelPreset.blog128.configuration())
        #expect(g.parameterCount == 3_856_372)
        #expect(d.parameterCount == 2_801_202)
        let gMACs = g.summary().reduce(0) { $0 + $1.multiplyAccumulates }
        let dMACs = d.summary().reduce(0) { $0 + $1.multiplyAccumulates }
        #expect(Swift.abs(Double(gMACs) / 256.6e6 - 1) < 0.01, "G MACs \(gMACs)")
        #expect(Swift.abs(Double(dMACs) / 221.3e6 - 1) < 0.01, "D MACs \(dMACs)")
        // Per-layer rows of docs/model.md §2.1 and §2.2.
        #expect(
            g.summary().map(\.parameters) == [
                1_056_768, 2_097_152 + 256, 524_288 + 128, 131_072 + 64, 5_201, 32_768 + 32, 8_192 + 16, 435,
            ])
        #expect(d.summary().map(\.parameters) == [1_568, 32_832, 5_201, 131_200, 524_544, 2_097_664, 8_193])
        #expect(
            g.summary().map(\.outputShape) == [
                [512, 4, 4], [256, 8, 8], [128, 16, 16], [64, 32, 32], [64, 32, 32],
                [32, 64, 64], [16, 128, 128], [3, 128, 128],
            ])
    }

    @Test func everyLayerIsSpectrallyNormalisedAndStateNamesAreStable() throws {
        let (g, d) = build(try ModelPreset.blog128.configuration())
        let gBuffers = g.namedBuffers().map(\.name)
        #expect(gBuffers.contains("project.weight_u") && gBuffers.contains("output.weight_v"))
        #expect(gBuffers.contains("blocks.0.conv.weight_u") && gBuffers.contains("blocks.0.norm.running_mean"))
        #expect(gBuffers.contains("blocks.3.f.weight_u") && gBuffers.contains("blocks.3.h.weight_v"))
        #expect(d.namedBuffers().map(\.name).contains("head.weight_u"))
        let gParameters = g.namedParameters().map(\.name)
        #expect(gParameters.contains("blocks.2.conv.weight") && gParameters.contains("blocks.3.gamma"))
        #expect(!gParameters.contains("blocks.0.norm.weight"), "the author's generator BN has no scale")
        // SN u, v buffers do not count as parameters.
        let weightLayers = g.namedParameters().filter { $0.name.hasSuffix(".weight") }.count
        #expect(g.namedBuffers().filter { $0.name.hasSuffix("weight_u") }.count == weightLayers)
    }

    @Test(arguments: [ModelPreset.sagan32, .sagan64, .blog128, .sagan256, .dcgan64])
    func presetsBuildAtEveryResolution(preset: ModelPreset) throws {
        for resolution in [32, 64, 128, 256] {
            for channels in [1, 3] {
                let config = try preset.configuration(resolution: resolution, imageChannels: channels)
                let (g, d) = build(config)
                #expect(g.summary().last!.outputShape == [channels, resolution, resolution])
                #expect(d.summary().last!.outputShape == [1])
                if preset.family == .sagan {
                    let dSide = config.discriminatorAttentionSides[0]
                    #expect(config.generatorAttentionSides == [32])
                    #expect(dSide == (resolution >= 64 ? 32 : 16))
                } else {
                    #expect(g.attentionLayers.isEmpty && d.attentionLayers.isEmpty)
                    #expect(d.namedBuffers().allSatisfy { !$0.name.contains("weight_u") })
                }
            }
        }
    }

    @Test func forwardShapesAndEvaluationIsDeterministic() throws {
        var config = try ModelPreset.sagan32.configuration(imageChannels: 1)
        config.baseWidth = 256  // a narrow net keeps the test fast
        config.generatorAttentionSides = [16]
        config.discriminatorAttentionSides = [8]
        try config.validate()
        let (g, d) = build(config)
        var generator = RandomGenerator(seed: 3)
        let z = Tensor.randomNormal([2, 128], generator: &generator)
        let images = noGrad { g(z) }
        #expect(images.shape == [2, 1, 32, 32])
        #expect(images.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
        #expect(noGrad { d(images) }.shape == [2, 1])
        g.setTraining(false)
        #expect(noGrad { g(z) }.scalars == noGrad { g(z) }.scalars)
    }

    @Test func invalidConfigurationsNameTheSetting() throws {
        #expect(
            throws: ConfigurationError.invalidSetting(
                "model.resolution", "resolution 100 must be a power of two from 16 to 512")
        ) { try ModelPreset.blog128.configuration(resolution: 100) }
        #expect(
            throws: ConfigurationError.invalidSetting(
                "model.imageChannels", "image channels 2 must be 1 (grayscale) or 3 (RGB)")
        ) { try ModelPreset.blog128.configuration(imageChannels: 2) }
        var config = try ModelPreset.sagan64.configuration()
        config.discriminatorAttentionSides = [64]
        do {
            try config.validate()
            Issue.record("attention at 64x64 in a 64x64 discriminator was accepted")
        } catch ConfigurationError.invalidSetting(let setting, let message) {
            #expect(setting == "model.discriminatorAttentionSides")
            #expect(message.hasPrefix("discriminator attention at 64x64"))
        }
    }

    @Test func dcganFollowsTheBaseline() throws {
        let (g, d) = build(try ModelPreset.dcgan64.configuration())
        #expect(g.summary().map(\.outputShape).last == [3, 64, 64])
        #expect(d.blocks.count == 4)
        #expect((d.blocks[0] as! DownBlock).norm == nil)
        #expect((d.blocks[1] as! DownBlock).norm != nil)
        #expect((d.blocks[0] as! DownBlock).slope == 0.2)
        #expect(g.projectNorm != nil)
    }
}
