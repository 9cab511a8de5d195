/// Why an input could not be used; every message names the file (or flag) at fault.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The classes `dataset check` counts.
    public enum Kind: String, Sendable, CaseIterable {
        case zeroByte = "zero-byte"
        case unreadable
        case truncated
        case corrupt
        case tooLarge = "too large"
        case unsupported
        case wrongExtension = "wrong extension"
        case invalidArgument = "invalid argument"
        /// A readable file of another kind than the flag needs (a checkpoint given as images).
        case wrongKind = "wrong kind"
    }

    public let kind: Kind
    public let path: String
    public let reason: String

    public init(_ kind: Kind, _ path: String, _ reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}
