/// Why a safetensors file could not be read, or does not hold what a reader needs. Each case names
/// the tensor at fault; `file` names the file once a reader knows it (`inFile(_:)`), so tests match
/// cases while users read one line that says where and what.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case unreadable(_ reason: String, file: String? = nil)
    /// The bytes break the format: the header, the offsets or the sizes.
    case malformed(_ reason: String, file: String? = nil)
    /// A tensor the reader needs is absent.
    case missingTensor(_ name: String, file: String? = nil)
    /// A tensor has another element type than the reader needs.
    case wrongDType(_ name: String, found: String, expected: String, file: String? = nil)
    /// A tensor has another shape than the reader needs.
    case wrongShape(_ name: String, found: [Int], expected: [Int], file: String? = nil)
    /// A tensor the reader has no place for.
    case unexpectedTensor(_ name: String, file: String? = nil)
    /// A tensor holds NaN or infinite values, which no saved state may.
    case nonFinite(_ name: String, file: String? = nil)
    /// The file is valid safetensors but not the kind of file the reader needs (its metadata says
    /// otherwise or lacks a field).
    case wrongKind(_ reason: String, file: String? = nil)

    /// The file the error is about, if known.
    public var file: String? {
        switch self {
        case .unreadable(_, let file), .malformed(_, let file), .missingTensor(_, let file),
            .wrongDType(_, _, _, let file),
            .wrongShape(_, _, _, let file), .unexpectedTensor(_, let file), .wrongKind(_, let file),
            .nonFinite(_, let file):
            return file
        }
    }

    /// The same error attributed to `path` (unless it already names a file).
    public func inFile(_ path: String) -> SafeTensorsError {
        guard file == nil else { return self }
        switch self {
        case .unreadable(let reason, _): return .unreadable(reason, file: path)
        case .malformed(let reason, _): return .malformed(reason, file: path)
        case .missingTensor(let name, _): return .missingTensor(name, file: path)
        case .wrongDType(let name, let found, let expected, _):
            return .wrongDType(name, found: found, expected: expected, file: path)
        case .wrongShape(let name, let found, let expected, _):
            return .wrongShape(name, found: found, expected: expected, file: path)
        case .unexpectedTensor(let name, _): return .unexpectedTensor(name, file: path)
        case .wrongKind(let reason, _): return .wrongKind(reason, file: path)
        case .nonFinite(let name, _): return .nonFinite(name, file: path)
        }
    }

    public var description: String {
        let what: String
        switch self {
        case .unreadable(let reason, _): what = "cannot read: \(reason)"
        case .malformed(let reason, _), .wrongKind(let reason, _): what = reason
        case .missingTensor(let name, _): what = "missing tensor \"\(name)\""
        case .wrongDType(let name, let found, let expected, _):
            what = "tensor \"\(name)\" has dtype \(found), the reader needs \(expected)"
        case .wrongShape(let name, let found, let expected, _):
            what = "tensor \"\(name)\" has shape \(found), the model needs \(expected)"
        case .unexpectedTensor(let name, _): what = "tensor \"\(name)\" does not belong to the model"
        case .nonFinite(let name, _): what = "tensor \"\(name)\" holds NaN or infinite values"
        }
        return file.map { "\($0): \(what)" } ?? what
    }
}
