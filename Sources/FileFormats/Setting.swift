import Synchronization

/// Something a user sets (a field of a library's options, a flag of `sagan`): what a message names
/// when the input at fault came from it. Libraries name settings by their key, the name of the
/// options field ("count must be at least 2"); the `sagan` executable gives them its flag names once
/// at start-up (`useNames`), so its users read the flag they typed ("--num must be at least 2").
public struct Setting: Hashable, Sendable, CustomStringConvertible {
    public let key: String

    public init(_ key: String) { self.key = key }

    /// The name messages use: the front end's name for it, or the key.
    public var description: String { Setting.names.withLock { $0[self] } ?? key }

    private static let names = Mutex<[Setting: String]>([:])

    /// Names settings as a front end calls them (the command line's flags); call it before work starts.
    public static func useNames(_ names: [Setting: String]) { Setting.names.withLock { $0 = names } }
}

extension Setting {
    // Engine (Autodiff).
    public static let precision = Setting("precision")
    public static let backend = Setting("backend")

    // Datasets: packing and reading.
    public static let source = Setting("source")
    public static let resolution = Setting("resolution")
    public static let channels = Setting("channels")
    public static let padding = Setting("padding")
    public static let crop = Setting("crop")
    public static let data = Setting("data")

    // Evaluation (`Evaluator`'s options and image sets).
    public static let metrics = Setting("metrics")
    public static let count = Setting("count")
    public static let batchSize = Setting("batchSize")
    public static let kidSubsets = Setting("kidSubsets")
    public static let kidSubsetSize = Setting("kidSubsetSize")
    public static let real = Setting("real")
    public static let fake = Setting("fake")

    // Models and generation.
    public static let checkpoint = Setting("checkpoint")
    public static let ema = Setting("ema")
    public static let seeds = Setting("seeds")
    public static let classIndex = Setting("classIndex")
    public static let grid = Setting("grid")
    public static let query = Setting("query")
    public static let layer = Setting("layer")
    public static let image = Setting("image")

    // Training runs.
    public static let folder = Setting("folder")
    public static let resume = Setting("resume")
    public static let config = Setting("configFile")
    public static let conditional = Setting("conditional")
    public static let steps = Setting("steps")
    public static let seed = Setting("seed")
    public static let learningRateG = Setting("learningRateG")
    public static let learningRateD = Setting("learningRateD")
    public static let discriminatorSteps = Setting("discriminatorSteps")
    public static let loss = Setting("loss")
    public static let update = Setting("update")
    public static let horizontalFlip = Setting("horizontalFlip")
    public static let dequantize = Setting("dequantize")
    public static let onNonFinite = Setting("onNonFinite")
    public static let logEvery = Setting("logEvery")
    public static let sampleEvery = Setting("sampleEvery")
    public static let checkpointEvery = Setting("checkpointEvery")
    public static let keepCheckpoints = Setting("keepCheckpoints")
    public static let replicaCheckEvery = Setting("replicaCheckEvery")
    public static let evaluationEvery = Setting("evaluation.every")
    public static let evaluationMetrics = Setting("evaluation.metrics")
    public static let evaluationCount = Setting("evaluation.count")
    public static let evaluationReal = Setting("evaluation.real")

    /// Every setting above: a front end names them all (the command line's test checks that it does).
    public static let all: [Setting] = [
        .precision, .backend, .source, .resolution, .channels, .padding, .crop, .data, .metrics, .count, .batchSize,
        .kidSubsets, .kidSubsetSize, .real, .fake, .checkpoint, .ema, .seeds, .classIndex, .grid, .query, .layer,
        .image, .folder, .resume, .config, .conditional, .steps, .seed, .learningRateG, .learningRateD,
        .discriminatorSteps, .loss, .update, .horizontalFlip, .dequantize, .onNonFinite, .logEvery, .sampleEvery,
        .checkpointEvery, .keepCheckpoints, .replicaCheckEvery, .evaluationEvery, .evaluationMetrics,
        .evaluationCount, .evaluationReal,
    ]
}
