import Datasets
import FileFormats

/// Why an evaluation cannot go on. Each case names the flag or file at fault.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    /// A setting out of range; the message names the flag.
    case invalidOption(_ message: String)
    /// An image set that cannot be opened.
    case unreadableImages(_ path: String, _ reason: String)
    /// A dataset error while reading images, with advice when there is some.
    case dataset(_ error: DataError, hint: String? = nil)
    /// A set with fewer images than N.
    case tooFewImages(_ message: String)
    /// Images a metric cannot compare (sizes, shapes).
    case unsuitableImages(_ message: String)
    /// The converted Inception weights are not where they were looked for.
    case missingWeights(_ path: String)
    /// The Inception weights file is not the expected one.
    case invalidWeights(_ path: String, _ reason: String)
    /// A numerical method failed on these features.
    case numerical(_ message: String)
    /// Another error, about the input given with `flag`.
    indirect case forSetting(_ setting: Setting, _ error: EvaluationError)

    public var description: String {
        switch self {
        case .invalidOption(let message), .tooFewImages(let message), .unsuitableImages(let message),
            .numerical(let message):
            return message
        case .unreadableImages(let path, let reason), .invalidWeights(let path, let reason): return "\(path): \(reason)"
        case .dataset(let error, let hint): return error.description + (hint.map { " (\($0))" } ?? "")
        case .forSetting(let setting, let error):
            // A file of the wrong kind is said as "x is a checkpoint; --real needs …", naming the flag.
            if case .dataset(let inner, _) = error, inner.kind == .wrongKind { return error.description }
            return "\(setting): \(error.description)"
        case .missingWeights(let path):
            return "the FID Inception weights are not at \(path): \(InceptionWeights.howToGetThem)"
        }
    }
}
