import Autodiff
import Datasets
import FileFormats
import Foundation
import NeuralNet
import Optimizers

/// Why training stopped early.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// A non-finite loss, σ or gradient in `step`; `what` names the tensor. Every weight, buffer and
    /// optimiser state was rolled back to before the step.
    case nonFinite(step: Int, what: String)
    /// A class-conditional model was given a batch without labels.
    case missingLabels
    /// The TensorBoard event file could not be created.
    case eventFile(path: String)

    public var description: String {
        switch self {
        case .nonFinite(let step, let what): return "step \(step): \(what); rolled back to the state before the step"
        case .missingLabels: return "a class-conditional model needs a dataset with labels"
        case .eventFile(let path): return "\(path): cannot create the event file"
        }
    }
}

/// What one training step measured.
public struct StepReport: Sendable {
    public var lossD: Float
    public var lossG: Float
    /// Mean D logit on the real and on the fake batch of the (last) D step.
    public var realLogit: Float
    public var fakeLogit: Float
    /// Each attention block's γ, by module path ("G.blocks.3").
    public var gammas: [(name: String, value: Float)]
    public var seconds: Double
    /// Set when the step was dropped by the non-finite guard (`--on-nan skip`).
    public var skipped: String?
}

/// The SAGAN training loop's state and step: G, D, optional G-EMA, both Adams, the z generator,
/// the step count and the data cursor — everything a checkpoint saves.
public final class Trainer {
    public private(set) var config: TrainConfig
    public let generator: Generator
    public let discriminator: Discriminator
    public let generatorEMA: Generator?
    public var optimizerG: Adam
    public var optimizerD: Adam
    let average: ModuleAverage?
    public internal(set) var step = 0
    public internal(set) var imagesSeen = 0
    /// Draws z for training; its state is saved, so a resumed run draws the same z.
    public internal(set) var noise: RandomGenerator
    /// Where the data loader is.
    public internal(set) var cursor = LoaderCursor()
    /// The fixed z of the sample grids.
    public let sampleZ: Tensor
    /// Module state gathered once at construction (each walk reflects over every module): names
    /// for the non-finite guard's messages, objects for the per-step snapshot.
    private let namedParametersG: [(name: String, parameter: Parameter)]
    private let namedParametersD: [(name: String, parameter: Parameter)]
    private let weightLayersG: [(name: String, layer: any WeightLayer)]
    private let weightLayersD: [(name: String, layer: any WeightLayer)]
    fileprivate let allParameters: [Parameter]
    fileprivate let allBuffers: [Buffer]
    /// The ranks that share each batch (data-parallel training); nil: this process alone.
    public private(set) var group: (any ProcessGroup)?

    public init(config: TrainConfig) {
        self.config = config
        let root = RandomGenerator(seed: config.seed)
        var initialisation = root.derived(purpose: 1)
        generator = Generator(config: config.model, generator: &initialisation)
        discriminator = Discriminator(config: config.model, generator: &initialisation)
        if config.ema {
            var unused = root.derived(purpose: 2)
            let copy = Generator(config: config.model, generator: &unused)
            generatorEMA = copy
            average = ModuleAverage(of: generator, into: copy, decay: config.emaDecay)
        } else {
            generatorEMA = nil
            average = nil
        }
        optimizerG = Adam(
            parameters: generator.parameters, learningRate: config.learningRateG, beta1: config.beta1,
            beta2: config.beta2,
            epsilon: config.adamEpsilon)
        optimizerD = Adam(
            parameters: discriminator.parameters, learningRate: config.learningRateD, beta1: config.beta1,
            beta2: config.beta2, epsilon: config.adamEpsilon)
        noise = root.derived(purpose: 3)
        var samples = root.derived(purpose: 4)
        sampleZ = Tensor.randomNormal([config.sampleCount, config.model.latentSize], generator: &samples)
        namedParametersG = generator.namedParameters()
        namedParametersD = discriminator.namedParameters()
        weightLayersG = generator.spectrallyNormalizedLayers()
        weightLayersD = discriminator.spectrallyNormalizedLayers()
        let modules: [any Module] = [generator, discriminator] + (generatorEMA.map { [$0] } ?? [])
        allParameters = modules.flatMap(\.parameters)
        allBuffers = modules.flatMap { $0.namedBuffers().map(\.buffer) }
    }

    /// Applies `settings` where they may change in the middle of a run (the step target, learning
    /// rates, the non-finite policy, the intervals and the checkpoints kept); the learning rates go
    /// to the optimisers too. Returns what changed, as "setting": "old → new". The other settings
    /// must be equal; `TrainingRun` refuses a resume that changes them.
    @discardableResult
    public func adopt(_ settings: TrainConfig) -> [String: String] {
        var changes: [String: String] = [:]
        func take<T: Equatable>(_ key: String, _ path: WritableKeyPath<TrainConfig, T>) {
            guard config[keyPath: path] != settings[keyPath: path] else { return }
            changes[key] = "\(config[keyPath: path]) → \(settings[keyPath: path])"
            config[keyPath: path] = settings[keyPath: path]
        }
        take("steps", \.steps)
        take("learningRateG", \.learningRateG)
        take("learningRateD", \.learningRateD)
        take("onNonFinite", \.onNonFinite)
        take("logEvery", \.logEvery)
        take("sampleEvery", \.sampleEvery)
        take("checkpointEvery", \.checkpointEvery)
        take("keepCheckpoints", \.keepCheckpoints)
        if changes["learningRateG"] != nil { optimizerG.learningRate = config.learningRateG }
        if changes["learningRateD"] != nil { optimizerD.learningRate = config.learningRateD }
        return changes
    }

    /// Shares every step with the other ranks of `group`: each takes its contiguous slice of each
    /// global batch and of the global z, gradients are averaged across ranks before Adam, and batch
    /// norm uses the whole batch's statistics when `synchronizedBatchNorm`. A group of one changes
    /// nothing. Throws when the batch does not divide among the ranks.
    public func distribute(over group: any ProcessGroup, synchronizedBatchNorm: Bool) throws {
        guard group.size > 1 else { return }
        guard config.batchSize % group.size == 0 else {
            throw ConfigurationError.invalidArgument(
                .batchSize,
                "\(Setting.batchSize) \(config.batchSize) does not divide among \(group.size) ranks: use a multiple of "
                    + "\(group.size) (each rank takes an equal slice of the global batch)")
        }
        self.group = group
        for module in [generator as any Module, discriminator] {
            for (_, layer) in module.namedModules() {
                (layer as? BatchNorm2d)?.synchronization = synchronizedBatchNorm ? group : nil
            }
        }
    }

    /// This rank's rows of a global-batch tensor: rows rank·B/N ..< (rank+1)·B/N.
    func localSlice(_ global: Tensor) -> Tensor {
        guard let group else { return global }
        let rows = global.shape[0] / group.size
        return global.sliced(alongAxis: 0, group.rank * rows..<(group.rank + 1) * rows)
    }

    /// This rank's entries of a global-batch list.
    func localSlice<T>(_ global: [T]?) -> [T]? {
        guard let group, let global else { return global }
        let rows = global.count / group.size
        return Array(global[group.rank * rows..<(group.rank + 1) * rows])
    }

    /// This rank's z: every rank draws the whole batch's z from the same stream and keeps its rows,
    /// so the ranks' slices side by side are the single-process z.
    func latent() -> Tensor {
        localSlice(Tensor.randomNormal([config.batchSize, config.model.latentSize], generator: &noise))
    }

    /// Uniform random classes for generated images, in a class-conditional model (this rank's slice).
    func fakeLabels() -> [Int]? {
        let classes = config.model.classCount
        guard classes > 0 else { return nil }
        return localSlice(noise.uniform(count: config.batchSize).map { min(Int($0 * Float(classes)), classes - 1) })
    }

    /// The real batch's labels, which a class-conditional model needs (this rank's slice).
    func realLabels(_ batch: Batch) throws -> [Int]? {
        guard config.model.classCount > 0 else { return nil }
        guard let labels = batch.labels else {
            throw TrainingError.missingLabels
        }
        return localSlice(labels)
    }

    /// Averages values (losses, logit means) and gradients over the ranks, so every rank applies the
    /// same update: the gradient of the global batch's mean loss. One flat buffer per network.
    func averaged(_ values: [Float], _ gradients: Gradients, _ parameters: [Parameter]) -> ([Float], Gradients) {
        guard let group else { return (values, gradients) }
        let present = parameters.filter { gradients[$0] != nil }
        var flat = values
        for parameter in present { flat += gradients[parameter]!.scalars }
        let scale = 1 / Float(group.size)
        flat = group.sum(flat).map { $0 * scale }
        var averaged = Gradients()
        var offset = values.count
        for parameter in present {
            let shape = gradients[parameter]!.shape
            let count = shape.reduce(1, *)
            averaged[parameter] = Tensor(shape: shape, scalars: Array(flat[offset..<offset + count]))
            offset += count
        }
        return (Array(flat[0..<values.count]), averaged)
    }

    /// One iteration. `nextBatch` supplies real images. A non-finite loss, gradient or σ leaves
    /// every weight, buffer and optimiser state as it was before the step and throws (or, with
    /// `onNonFinite = .skip`, halves both learning rates and reports the step as skipped).
    public func trainStep(nextBatch: () throws -> Batch) throws -> StepReport {
        let start = Date()
        let snapshot = Snapshot(self)
        do {
            var report = try config.update == .alternating ? alternatingStep(nextBatch) : simultaneousStep(nextBatch)
            average?.update()
            step += 1
            report.seconds = Date().timeIntervalSince(start)
            return report
        } catch let problem as NonFinite {
            snapshot.restore(self)
            guard config.onNonFinite == .skip else {
                throw TrainingError.nonFinite(step: step + 1, what: problem.what)
            }
            optimizerG.learningRate /= 2
            optimizerD.learningRate /= 2
            cursor = problem.cursor ?? cursor
            step += 1
            return StepReport(
                lossD: .nan, lossG: .nan, realLogit: .nan, fakeLogit: .nan, gammas: [],
                seconds: Date().timeIntervalSince(start),
                skipped:
                    "\(problem.what); batch dropped, learning rates halved to G \(optimizerG.learningRate), D "
                    + "\(optimizerD.learningRate)"
            )
        }
    }

    /// docs/model.md §7.2: D step(s) on real and detached fake batches, then a G step with fresh z.
    func alternatingStep(_ nextBatch: () throws -> Batch) throws -> StepReport {
        var lossD: Float = 0
        var realLogit: Float = 0
        var fakeLogit: Float = 0
        for _ in 0..<config.discriminatorSteps {
            let batch = try nextBatch()
            let labels = try realLabels(batch)
            let generatedLabels = fakeLabels()
            let fake = noGrad { generator(latent(), labels: generatedLabels) }  // (B/N, C, R, R)
            let images = localSlice(batch.images)  // (B/N, C, R, R)
            var real = Tensor(0)
            var fakeLogits = Tensor(0)
            let (localLoss, localGradients) = valueAndGradients(
                of: {
                    real = discriminator(images, labels: labels)
                    fakeLogits = discriminator(fake, labels: generatedLabels)
                    return GANLoss.discriminator(config.loss, real: real, fake: fakeLogits)
                }, wrt: optimizerD.parameters)
            let (values, gradients) = averaged(
                [localLoss, real.mean().scalar, fakeLogits.mean().scalar], localGradients, optimizerD.parameters)
            try guardFinite(values[0], gradients, "D", namedParametersD, weightLayersD, cursor: batch.cursor)
            optimizerD.step(gradients)
            (lossD, realLogit, fakeLogit) = (values[0], values[1], values[2])
            cursor = batch.cursor
            imagesSeen += config.batchSize
        }
        let z = latent()
        let labels = fakeLabels()
        let (localLoss, localGradients) = valueAndGradients(
            of: {
                GANLoss.generator(config.loss, fake: discriminator(generator(z, labels: labels), labels: labels))
            }, wrt: optimizerG.parameters)
        let (values, gradients) = averaged([localLoss], localGradients, optimizerG.parameters)
        let lossG = values[0]
        try guardFinite(lossG, gradients, "G", namedParametersG, weightLayersG, cursor: nil)
        optimizerG.step(gradients)
        return StepReport(
            lossD: lossD, lossG: lossG, realLogit: realLogit, fakeLogit: fakeLogit, gammas: gammas(), seconds: 0)
    }

    /// The author's loop: one forward pass, both gradients, D then G applied.
    func simultaneousStep(_ nextBatch: () throws -> Batch) throws -> StepReport {
        let batch = try nextBatch()
        let z = latent()
        let labels = try realLabels(batch)
        let generatedLabels = fakeLabels()
        let images = localSlice(batch.images)  // (B/N, C, R, R)
        var real = Tensor(0)
        var fakeLogits = Tensor(0)
        var lossG = Tensor(0)
        let (lossD, all) = Autodiff.valueAndGradients(
            of: {
                real = discriminator(images, labels: labels)
                fakeLogits = discriminator(generator(z, labels: generatedLabels), labels: generatedLabels)
                lossG = GANLoss.generator(config.loss, fake: fakeLogits)
                return GANLoss.discriminator(config.loss, real: real, fake: fakeLogits)
            }, wrt: optimizerD.parameters.map(\.value))
        let gradientsG = Autodiff.gradients(of: lossG, wrt: optimizerG.parameters.map(\.value))
        var localD = Gradients()
        var localG = Gradients()
        for (parameter, gradient) in zip(optimizerD.parameters, all) { localD[parameter] = gradient }
        for (parameter, gradient) in zip(optimizerG.parameters, gradientsG) { localG[parameter] = gradient }
        let (values, forD) = averaged(
            [lossD.scalar, lossG.scalar, real.mean().scalar, fakeLogits.mean().scalar], localD, optimizerD.parameters)
        let (_, forG) = averaged([], localG, optimizerG.parameters)
        try guardFinite(values[0], forD, "D", namedParametersD, weightLayersD, cursor: batch.cursor)
        try guardFinite(values[1], forG, "G", namedParametersG, weightLayersG, cursor: batch.cursor)
        optimizerD.step(forD)
        optimizerG.step(forG)
        cursor = batch.cursor
        imagesSeen += config.batchSize
        return StepReport(
            lossD: values[0], lossG: values[1], realLogit: values[2], fakeLogit: values[3], gammas: gammas(),
            seconds: 0)
    }

    /// γ of every attention block of G and D.
    public func gammas() -> [(name: String, value: Float)] {
        let named: [(String, [any Layer])] = [("G", generator.blocks), ("D", discriminator.blocks)]
        return named.flatMap { prefix, blocks in
            blocks.enumerated().compactMap { index, block in
                (block as? any SelfAttentionLayer).map { ("\(prefix).blocks.\(index)", $0.gamma.value.scalar) }
            }
        }
    }

    struct NonFinite: Error {
        let what: String
        let cursor: LoaderCursor?
    }

    /// Throws `NonFinite` naming the first non-finite loss, σ or gradient, before anything is applied.
    func guardFinite(
        _ loss: Float, _ gradients: Gradients, _ net: String, _ parameters: [(name: String, parameter: Parameter)],
        _ layers: [(name: String, layer: any WeightLayer)], cursor: LoaderCursor?
    ) throws {
        guard loss.isFinite else { throw NonFinite(what: "the \(net) loss is \(loss)", cursor: cursor) }
        for (path, layer) in layers where !(layer.lastSigma?.isFinite ?? true) {
            throw NonFinite(what: "σ of \(net).\(path) is \(layer.lastSigma!)", cursor: cursor)
        }
        for (name, parameter) in parameters where !(gradients[parameter]?.isFinite ?? true) {
            throw NonFinite(what: "the gradient of \(net).\(name) is not finite", cursor: cursor)
        }
    }

    /// Everything a step can change, held by value (tensors are immutable, so this copies nothing).
    struct Snapshot {
        let parameters: [(Parameter, Tensor)]
        let buffers: [(Buffer, Tensor)]
        let optimizerG: Adam
        let optimizerD: Adam
        let noise: RandomGenerator
        let cursor: LoaderCursor
        let imagesSeen: Int

        init(_ trainer: Trainer) {
            parameters = trainer.allParameters.map { ($0, $0.value) }
            buffers = trainer.allBuffers.map { ($0, $0.value) }
            optimizerG = trainer.optimizerG
            optimizerD = trainer.optimizerD
            noise = trainer.noise
            cursor = trainer.cursor
            imagesSeen = trainer.imagesSeen
        }

        func restore(_ trainer: Trainer) {
            for (parameter, value) in parameters { parameter.assign(value) }
            for (buffer, value) in buffers { buffer.assign(value) }
            trainer.optimizerG = optimizerG
            trainer.optimizerD = optimizerD
            trainer.noise = noise
            trainer.cursor = cursor
            trainer.imagesSeen = imagesSeen
        }
    }

    /// The sample grid's images from the fixed z: G-EMA when enabled, evaluation mode.
    public func samples() -> Tensor {
        let sampler = generatorEMA ?? generator
        let wasTraining = sampler.isTraining
        sampler.setTraining(false)
        defer { sampler.setTraining(wasTraining) }
        return noGrad { sampler(sampleZ, labels: sampleLabels) }  // (S, C, R, R)
    }

    /// The attention picture of the first sample-grid image: G's first attention layer, for queries
    /// at a quarter, half and three quarters of the image's diagonal. Nil without attention in G.
    public func attentionPicture() -> PixelImage? {
        let sampler = generatorEMA ?? generator
        guard let attention = sampler.attentionLayers.first else { return nil }
        let wasTraining = sampler.isTraining
        sampler.setTraining(false)
        attention.recordsAttention = true
        defer {
            attention.recordsAttention = false
            sampler.setTraining(wasTraining)
        }
        let side = config.model.resolution
        // (1, C, R, R)
        let image = noGrad { sampler(sampleZ.sliced(alongAxis: 0, 0..<1), labels: sampleLabels.map { [$0[0]] }) }
        let queries = [(x: side / 4, y: side / 4), (x: side / 2, y: side / 2), (x: 3 * side / 4, y: 3 * side / 4)]
        guard let maps = try? AttentionPicture.maps(attention, queries: queries, resolution: side) else { return nil }
        return AttentionPicture.compose(
            image: AttentionPicture.rgb(image.reshaped(to: Array(image.shape.dropFirst()))), queries: queries,
            maps: maps)
    }

    /// The classes of the sample grid: one class per row, in a class-conditional model.
    public var sampleLabels: [Int]? {
        let classes = config.model.classCount
        guard classes > 0 else { return nil }
        let side = Int(Double(config.sampleCount).squareRoot())
        return (0..<config.sampleCount).map { ($0 / side) % classes }
    }
}
