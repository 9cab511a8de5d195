import FileFormats
import Foundation
import GAN

let config = try! TrainConfig.preset(.tiny32, resolution: 32, imageChannels: 1)

/// Any bytes as the run.json a resumed run reads back (to keep its first command line and add to
/// `resumes`): a valid new run.json must come out, whatever the old one holds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let written = try! RunDirectory.runInfo(
        previous: Data(bytes: bytes, count: count), commandLine: ["fuzz"], config: config, datasetPath: "data",
        datasetDigest: "digest", precision: .bf16, resumedAt: 1, changes: ["steps": "1 → 2"])
    let info = try! JSONValue(parsing: written)
    precondition(info["resumes"]?.array?.isEmpty == false, "run.json lost its resumes")
    return 0
}
