import Autodiff
import FileFormats
import Foundation
import GAN
import NeuralNet
import TestSupport
import Testing

/// A checkpoint written by the Swift code, loaded into the PyTorch reference models by
/// Tests/Reference/check_checkpoint.py (Debian's python3-torch, which `make test` installs).
@Suite("Swift checkpoints load in PyTorch", .tags(.slow), .skippedInFastRuns)
struct PyTorchRoundTripTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python = "/usr/bin/python3"

    @Test(arguments: [AttentionVariant.paper, .biggan])
    func aSwiftCheckpointGivesTheSameOutputsInPyTorch(variant: AttentionVariant) throws {
        guard Self.torchIsAvailable() else {
            Issue.record("\(Self.python) cannot import torch: run `apt-get install python3-torch` (make test does)")
            return
        }
        var config = try ModelPreset.sagan32.configuration(imageChannels: 3)
        config.baseWidth = 256
        config.attentionVariant = variant
        config.generatorAttentionSides = [16]
        config.discriminatorAttentionSides = [8]
        try config.validate()
        let (g, d) = build(config, seed: 11)
        let batch = 3
        let z = Deterministic.tensor("z", [batch, config.latentSize], scale: 1.5)
        let x = Deterministic.tensor("x", [batch, 3, 32, 32])
        _ = noGrad { (g(z), d(x)) }  // move u, v and the BN statistics off their initial values
        for module in [g, d] as [any Module] { module.setTraining(false) }
        for layer in g.attentionLayers + d.attentionLayers { layer.gamma.assign(Tensor(0.5)) }

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let checkpoint = folder.appendingPathComponent("swift.safetensors")
        let expected = folder.appendingPathComponent("expected.safetensors")
        try ModelCheckpoint.save(generator: g, discriminator: d, preset: "sagan32", to: checkpoint)
        try SafeTensorsFile.write([("eval.G", noGrad { g(z) }), ("eval.D", noGrad { d(x) })], to: expected)

        let (status, output) = try Self.run([
            Self.repositoryRoot.appendingPathComponent("Tests/Reference/check_checkpoint.py").path,
            checkpoint.path, expected.path,
        ])
        #expect(status == 0, "check_checkpoint.py: \(output)")
        #expect(output.contains("eval.G: worst difference"), "\(output)")
    }

    @Test func anExportGivesTheSameImagesInPyTorch() throws {
        guard Self.torchIsAvailable() else {
            Issue.record("\(Self.python) cannot import torch: run `apt-get install python3-torch` (make test does)")
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = try ModelPreset.sagan32.configuration(imageChannels: 1)
        config.baseWidth = 256
        config.generatorAttentionSides = [16]
        config.discriminatorAttentionSides = [8]
        let (g, d) = build(config, seed: 12)
        let z = Deterministic.tensor("z", [2, config.latentSize], scale: 1.5)
        _ = noGrad { g(z) }
        for layer in g.attentionLayers { layer.gamma.assign(Tensor(0.5)) }
        let checkpoint = folder.appendingPathComponent("pair.safetensors")
        try ModelCheckpoint.save(generator: g, discriminator: d, preset: "sagan32", to: checkpoint)
        let loaded = try LoadedGenerator(contentsOf: checkpoint, ema: false)
        let export = folder.appendingPathComponent("G.safetensors")
        try GeneratorExport.write(loaded, ema: false, to: export)
        let expected = folder.appendingPathComponent("expected.safetensors")
        g.setTraining(false)
        try SafeTensorsFile.write([("eval.G", noGrad { g(z) })], to: expected)
        let (status, output) = try Self.run([
            Self.repositoryRoot.appendingPathComponent("Tests/Reference/check_checkpoint.py").path,
            export.path, expected.path,
        ])
        #expect(status == 0 && output.contains("eval.G: worst difference"), "check_checkpoint.py: \(output)")
    }

    static func torchIsAvailable() -> Bool { (try? run(["-c", "import torch"]).status) == 0 }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
