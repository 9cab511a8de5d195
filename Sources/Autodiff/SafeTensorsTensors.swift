import FileFormats
import Foundation

// Tensors in and out of safetensors files. The format itself lives in FileFormats, below the
// engine, so that datasets and caches can use it without the tape.

extension SafeTensorsFile {
    /// The named F32 tensor.
    public func tensor(_ name: String) throws -> Tensor {
        let entry = try f32Entry(name)
        return Tensor(shape: entry.shape, scalars: try f32Scalars(name))
    }

    /// The bytes of a file holding `tensors` (F32) and `metadata`, laid out as the reference writer
    /// does (see `encode(raw:metadata:)`).
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws
        -> Data
    {
        try encode(raw: tensors.map { RawTensor(name: $0.name, tensor: $0.tensor) }, metadata: metadata)
    }

    /// Writes `tensors` (F32) and `metadata` atomically: readers see the old file or the whole new one.
    /// With `checksum`, the data's CRC-32C goes into the metadata and is verified on every read; a
    /// checked file must hold finite values only (`nonFinite` names the first tensor that does not).
    public static func write(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], checksum: Bool = false,
        to url: URL
    ) throws {
        let raw = tensors.map { RawTensor(name: $0.name, tensor: $0.tensor) }
        if checksum, let bad = raw.first(where: { !$0.holdsFiniteF32 }) {
            throw SafeTensorsError.nonFinite(bad.name, file: url.path)
        }
        try writeAtomically(try encode(raw: raw, metadata: metadata, checksum: checksum), to: url)
    }
}

extension SafeTensorsFile.RawTensor {
    /// An F32 tensor.
    public init(name: String, tensor: Tensor) {
        self.init(name: name, shape: tensor.shape, scalars: tensor.scalars)
    }

    /// Whether every element of this F32 tensor is finite (read from the bytes, without a copy).
    var holdsFiniteF32: Bool {
        bytes.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count, by: 4).allSatisfy {
                raw.loadUnaligned(fromByteOffset: $0, as: Float.self).isFinite
            }
        }
    }
}
