import Autodiff
import FileFormats
import Foundation

extension Module {
    /// Every parameter and buffer by dotted name, each name prefixed with `prefix`.
    public func stateTensors(prefix: String = "") -> [(name: String, tensor: Tensor)] {
        namedParameters().map { (prefix + $0.name, $0.parameter.value.detached()) }
            + namedBuffers().map { (prefix + $0.name, $0.buffer.value) }
    }

    /// Loads every parameter and buffer from `file`'s tensors named `prefix` + name.
    ///
    /// All names, shapes and dtypes are checked before anything is assigned, so a mismatch leaves
    /// the module unchanged. Tensors under `prefix` that the module does not have are an error too.
    public func loadState(from file: SafeTensorsFile, prefix: String = "", source: String = "checkpoint") throws {
        let targets: [(String, (Tensor) -> Void, [Int])] =
            namedParameters().map { item in (item.name, { item.parameter.assign($0) }, item.parameter.shape) }
            + namedBuffers().map { item in (item.name, { item.buffer.assign($0) }, item.buffer.shape) }
        var loaded: [(Tensor, (Tensor) -> Void)] = []
        for (name, assign, shape) in targets {
            let key = prefix + name
            guard let entry = file.entries[key] else { throw SafeTensorsError.missingTensor(key, file: source) }
            guard entry.dtype == .F32 else {
                throw SafeTensorsError.wrongDType(key, found: entry.dtype.rawValue, expected: "F32", file: source)
            }
            guard entry.shape == shape else {
                throw SafeTensorsError.wrongShape(key, found: entry.shape, expected: shape, file: source)
            }
            loaded.append((try file.tensor(key), assign))
        }
        let known = Set(targets.map { prefix + $0.0 })
        if let unexpected = file.names.first(where: { $0.hasPrefix(prefix) && !known.contains($0) }) {
            throw SafeTensorsError.unexpectedTensor(unexpected, file: source)
        }
        for (tensor, assign) in loaded { assign(tensor) }
    }
}
