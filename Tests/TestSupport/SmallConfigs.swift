import Foundation
import GAN

/// A very small SAGAN for fast tests.
public func smallTrainConfig(ema: Bool = true, update: TrainConfig.Update = .alternating) throws -> TrainConfig {
    var config = try TrainConfig.preset(.tiny32, resolution: 32, imageChannels: 1)
    config.model.baseWidth = 128
    config.model.generatorAttentionSides = [16]
    config.model.discriminatorAttentionSides = [16]
    config.batchSize = 4
    config.ema = ema
    config.update = update
    config.sampleCount = 4
    try config.validate()
    return config
}

/// A `--config` file for `sagan train` with `smallTrainConfig`'s model and 4 samples, plus `extra`
/// settings (`"logEvery": 1`), written into `folder`.
public func writeSmallConfigFile(in folder: URL, extra: String = "") throws -> URL {
    let url = folder.appendingPathComponent("small.json")
    let settings =
        #"{"model": {"baseWidth": 128, "generatorAttentionSides": [16], "discriminatorAttentionSides": [16]}, "#
        + #""sampleCount": 4"# + (extra.isEmpty ? "" : ", \(extra)") + "}"
    try Data(settings.utf8).write(to: url)
    return url
}
