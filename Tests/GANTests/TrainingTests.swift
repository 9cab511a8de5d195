import Autodiff
import Datasets
import Foundation
import GAN
import Kernels
import NeuralNet
import TestSupport
import Testing

/// Every tensor of the trainer's state, by name, with the non-tensor state as strings.
func fullState(_ trainer: Trainer) -> [String: [Float]] {
    var state: [String: [Float]] = [:]
    let modules: [(String, any Module)] =
        [("G.", trainer.generator), ("D.", trainer.discriminator)]
        + (trainer.generatorEMA.map { [("G_ema.", $0 as any Module)] } ?? [])
    for (prefix, module) in modules {
        for (name, tensor) in module.stateTensors(prefix: prefix) { state[name] = tensor.scalars }
    }
    for (prefix, module, optimizer) in [
        ("opt_G", trainer.generator as any Module, trainer.optimizerG),
        ("opt_D", trainer.discriminator as any Module, trainer.optimizerD),
    ] {
        for (name, parameter) in module.namedParameters() {
            if let (m, v) = optimizer.moments(of: parameter) {
                state["\(prefix).m.\(name)"] = m.scalars
                state["\(prefix).v.\(name)"] = v.scalars
            }
        }
    }
    return state
}

@Suite("Training")
struct TrainingTests {
    func run(_ trainer: Trainer, _ dataset: PackedDataset, steps: Int) throws {
        let loader = try BatchLoader(
            dataset: dataset, options: .init(batchSize: trainer.config.batchSize, seed: trainer.config.seed),
            cursor: trainer.cursor)
        for _ in 0..<steps {
            let report = try trainer.trainStep { try loader.next() }
            #expect(report.lossD.isFinite && report.lossG.isFinite)
        }
    }

    @Test(arguments: [TrainConfig.Update.alternating, .simultaneous])
    func resumingIsBitIdentical(update: TrainConfig.Update) throws {
        let folder = try FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makeBlobPack(folder)
        let config = try smallTrainConfig(update: update)

        let straight = Trainer(config: config)
        try run(straight, dataset, steps: 6)

        let first = Trainer(config: config)
        try run(first, dataset, steps: 3)
        let checkpoint = folder.appendingPathComponent("step3.safetensors")
        try TrainingCheckpoint.save(first, datasetDigest: dataset.sourceDigest, commandLine: "test", to: checkpoint)
        let (resumed, digest) = try TrainingCheckpoint.load(checkpoint)
        #expect(digest == dataset.sourceDigest && resumed.step == 3)
        try run(resumed, dataset, steps: 3)

        #expect(resumed.step == straight.step && resumed.imagesSeen == straight.imagesSeen)
        #expect(resumed.noise == straight.noise && resumed.cursor == straight.cursor)
        #expect(resumed.optimizerG.stepCount == straight.optimizerG.stepCount)
        let expected = fullState(straight)
        let actual = fullState(resumed)
        #expect(Set(expected.keys) == Set(actual.keys) && expected.count > 50)
        for (name, values) in expected {
            #expect(actual[name] == values, "\(name) differs after resuming")
        }
    }

    /// A backend whose memory the host cannot address (the simulated device: reference kernels
    /// behind device memory) trains exactly as the reference backend: nothing in the layers, the
    /// optimisers or the trainer reaches a storage's elements except through `Storage.onHost()`.
    @Test func aDeviceBackendTrainsBitIdenticallyToTheReference() throws {
        let folder = try FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makeBlobPack(folder)
        var config = try smallTrainConfig()
        config.batchSize = 2
        func train(on backend: any Backend) throws -> [String: [Float]] {
            try withBackend(backend) {
                let trainer = Trainer(config: config)
                try run(trainer, dataset, steps: 3)
                return fullState(trainer)
            }
        }
        let device = SimulatedDeviceBackend.shared
        let copiesBefore = device.copiesToDevice
        let expected = try train(on: BackendRegistry.reference)
        let actual = try train(on: device)
        #expect(device.copiesToDevice > copiesBefore + 100, "the simulated device computed nothing")
        #expect(Set(expected.keys) == Set(actual.keys) && expected.count > 50)
        for (name, values) in expected {
            #expect(actual[name]?.map(\.bitPattern) == values.map(\.bitPattern), "\(name) differs on the device")
        }
    }

    @Test func classConditionalTrainingUsesTheLabels() throws {
        let folder = try FileManager.default.temporaryDirectory.appendingPathComponent(
            "conditional-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makeBlobPack(folder)
        var config = try smallTrainConfig(ema: false)
        config.model.classCount = 2
        try config.validate()
        let trainer = Trainer(config: config)
        #expect(trainer.generator.namedParameters().contains { $0.name == "blocks.0.class_scale.weight" })
        #expect(trainer.discriminator.namedParameters().contains { $0.name == "projection.weight" })
        try run(trainer, dataset, steps: 2)
        var random = RandomGenerator(seed: 8)
        let z = Tensor.randomNormal([2, 128], generator: &random)
        trainer.generator.setTraining(false)
        let a = noGrad { trainer.generator(z, labels: [0, 0]) }.scalars
        let b = noGrad { trainer.generator(z, labels: [1, 1]) }.scalars
        #expect(a != b, "the class changes the image")
        #expect(trainer.sampleLabels == [0, 0, 1, 1])
        // A checkpoint keeps the class count and the class tables.
        let url = folder.appendingPathComponent("c.safetensors")
        try TrainingCheckpoint.save(trainer, datasetDigest: "", commandLine: "", to: url)
        let (loaded, _) = try TrainingCheckpoint.load(url)
        #expect(loaded.config.model.classCount == 2)
        loaded.generator.setTraining(false)
        #expect(noGrad { loaded.generator(z, labels: [1, 1]) }.scalars == b)
    }

    /// Steady training must reuse its kernels: a cache that grows per step (kernels compiled for
    /// step-dependent constants) leaks memory and time. A child process, so other tests' shapes do not count.
    @Test(.tags(.slow), .skippedInFastRuns) func trainingStepsReuseTheirKernels() async throws {
        try #require(OneDNNBackend.shared != nil, "oneDNN is not loaded")
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kernels-\(UUID().uuidString)")
            try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let dataset = try! makeBlobPack(folder)
            let trainer = Trainer(config: try! smallTrainConfig())
            let loader = try! BatchLoader(
                dataset: dataset, options: .init(batchSize: 4, seed: 1), cursor: trainer.cursor)
            for _ in 0..<2 { _ = try! trainer.trainStep { try loader.next() } }
            let warm = OneDNNBackend.shared!.cachedPrimitiveCount
            for _ in 0..<4 { _ = try! trainer.trainStep { try loader.next() } }
            let after = OneDNNBackend.shared!.cachedPrimitiveCount
            FileHandle.standardError.write(Data("primitives after 2 steps: \(warm), after 6: \(after)\n".utf8))
            exit(after == warm ? 0 : 1)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("primitives after 2 steps"), "stderr: \(message)")
    }

    @Test func aNonFiniteStepIsRolledBackAndNamed() throws {
        let folder = try FileManager.default.temporaryDirectory.appendingPathComponent("nan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makeBlobPack(folder)
        var config = try smallTrainConfig(ema: false)
        let trainer = Trainer(config: config)
        try run(trainer, dataset, steps: 1)
        let before = fullState(trainer)
        // Poison one weight: every later forward produces NaN.
        let poisoned = trainer.discriminator.namedParameters().first { $0.name == "blocks.0.conv.weight" }!.parameter
        let clean = poisoned.value
        var values = clean.scalars
        values[0] = .nan
        poisoned.assign(Tensor(shape: clean.shape, scalars: values))
        let loader = try BatchLoader(dataset: dataset, options: .init(batchSize: 4), cursor: trainer.cursor)
        do {
            _ = try trainer.trainStep { try loader.next() }
            Issue.record("a NaN step went through")
        } catch TrainingError.nonFinite(let step, let what) {
            #expect(step == 2 && what == "σ of D.blocks.0.conv is nan", "\(what)")
        }
        poisoned.assign(clean)
        #expect(fullState(trainer) == before, "the failed step changed the state")
        #expect(trainer.step == 1)

        config.onNonFinite = .skip
        let skipping = Trainer(config: config)
        let skipped = skipping.discriminator.namedParameters().first { $0.name == "blocks.0.conv.weight" }!.parameter
        skipped.assign(Tensor(shape: clean.shape, scalars: values))
        let report = try skipping.trainStep { try loader.next() }
        #expect(report.skipped != nil && skipping.optimizerD.learningRate == config.learningRateD / 2)
    }
}
