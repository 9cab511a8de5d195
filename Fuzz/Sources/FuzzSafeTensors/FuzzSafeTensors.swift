import FileFormats
import Foundation

/// Any bytes as a safetensors file (checkpoints and packs are safetensors): parsing, the checksum,
/// the finiteness check and every tensor's bytes must either work or throw SafeTensorsError.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard let file = try? SafeTensorsFile(data) else { return 0 }
    _ = try? file.verifyChecksum()
    _ = try? file.checkFinite()
    for name in file.names {
        _ = try? file.withBytes(of: name) { $0.count }
        _ = try? file.f32Scalars(name)
    }
    return 0
}
