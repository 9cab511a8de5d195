import Datasets
import Foundation

/// Any bytes as an IDX file, gzip-compressed or not (MNIST's format): it must parse or throw.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let raw = Data(bytes: bytes, count: count)
    guard let data = Gzip.isCompressed(raw) ? try? Gzip.decompress(raw, path: "fuzz", limit: 1 << 24) : raw else {
        return 0
    }
    _ = try? IDX.parse(data, path: "fuzz")
    return 0
}
