import Datasets
import FileFormats
import Foundation

/// Settings given on top of a preset and a config file (the `train` flags). nil and false leave
/// the value underneath.
public struct TrainOverrides: Sendable, Equatable {
    public var steps: Int?
    public var batchSize: Int?
    public var seed: UInt64?
    public var learningRateG: Float?
    public var learningRateD: Float?
    public var discriminatorSteps: Int?
    public var loss: TrainConfig.Loss?
    public var update: TrainConfig.Update?
    public var ema = false
    public var logEvery: Int?
    public var sampleEvery: Int?
    public var checkpointEvery: Int?
    public var keepCheckpoints: Int?
    public var horizontalFlip = false
    public var dequantize = false
    public var onNonFinite: TrainConfig.NonFinitePolicy?

    public init() {}

    /// `settings` with these overrides applied.
    public func apply(to settings: inout TrainConfig) {
        if let steps { settings.steps = steps }
        if let batchSize { settings.batchSize = batchSize }
        if let seed { settings.seed = seed }
        if let learningRateG { settings.learningRateG = learningRateG }
        if let learningRateD { settings.learningRateD = learningRateD }
        if let discriminatorSteps { settings.discriminatorSteps = discriminatorSteps }
        if let loss { settings.loss = loss }
        if let update { settings.update = update }
        if ema { settings.ema = true }
        if let logEvery { settings.logEvery = logEvery }
        if let sampleEvery { settings.sampleEvery = sampleEvery }
        if let checkpointEvery { settings.checkpointEvery = checkpointEvery }
        if let keepCheckpoints { settings.keepCheckpoints = keepCheckpoints }
        if horizontalFlip { settings.horizontalFlip = true }
        if dequantize { settings.dequantize = true }
        if let onNonFinite { settings.onNonFinite = onNonFinite }
    }
}

extension TrainConfig {
    /// The settings of a new run on `dataset`, resolved in order: the preset's defaults at the
    /// dataset's resolution, then `configFile` (a JSON object of differences), then `overrides`.
    /// `conditional` sizes a class-conditional model to the dataset's labels.
    public static func resolve(
        preset: ModelPreset, dataset: PackedDataset, configFile: URL? = nil,
        overrides: TrainOverrides = TrainOverrides(),
        conditional: Bool = false
    ) throws -> TrainConfig {
        guard dataset.height == dataset.width else {
            throw ConfigurationError.dataset(
                "\(Setting.data): images are \(dataset.width)x\(dataset.height); training needs square images (repack "
                    + "with "
                    + "\(Setting.crop))"
            )
        }
        var settings = try TrainConfig.preset(preset, resolution: dataset.height, imageChannels: dataset.channels)
        if let configFile { settings = try settings.applying(configFile: configFile) }
        overrides.apply(to: &settings)
        if conditional {
            guard dataset.hasLabels, dataset.labelNames.count >= 2 else {
                throw ConfigurationError.dataset(
                    "\(Setting.conditional): \(dataset.url.path) has no labels (pack a folder with one sub-folder per "
                        + "class, "
                        + "or an IDX file with its labels)")
            }
            settings.model.classCount = dataset.labelNames.count
        }
        try settings.validate()
        try settings.model.checkFits(dataset)
        guard settings.batchSize <= dataset.count else {
            throw ConfigurationError.dataset(
                "batch size \(settings.batchSize) is larger than the dataset (\(dataset.count) images)")
        }
        return settings
    }
}

extension TrainConfig {
    /// These settings with the differences in a `--config` JSON file applied.
    public func applying(configFile: URL) throws -> TrainConfig {
        let source = "\(Setting.config) \(configFile.relativePath)"
        if let reason = PathKind(configFile.path).notAFile {
            throw ConfigurationError.configFile(source, "it is \(reason)")
        }
        guard let contents = try? Data(contentsOf: configFile) else {
            throw ConfigurationError.configFile(source, "cannot read the file")
        }
        return try applying(jsonDifferences: contents, source: source)
    }
}

extension ModelConfig {
    /// Checks that the model makes images of the dataset's size and channels.
    public func checkFits(_ dataset: PackedDataset) throws {
        guard resolution == dataset.height, resolution == dataset.width, imageChannels == dataset.channels else {
            throw ConfigurationError.dataset(
                "\(Setting.data): the dataset holds \(dataset.width)x\(dataset.height)x\(dataset.channels) images, "
                    + "the model makes \(resolution)x\(resolution)x\(imageChannels)")
        }
    }
}
