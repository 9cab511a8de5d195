import Foundation
import GAN

/// Any bytes as a `--config` file of differences, applied to a preset and validated: the result is
/// a valid configuration or a ConfigurationError, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let base = try? TrainConfig.preset(.tiny32, resolution: 32, imageChannels: 1) else { return 0 }
    if let config = try? base.applying(jsonDifferences: Data(bytes: bytes, count: count), source: "fuzz") {
        _ = try? config.validate()
    }
    return 0
}
