import Datasets
import Foundation

/// Any bytes as an image file: JPEG (with its EXIF orientation), PNG, PGM or PPM, through our
/// libjpeg-turbo and libpng wrappers; decoding must work or throw DataError, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? ImageCodec.decode(Data(bytes: bytes, count: count), path: "fuzz")
    return 0
}
