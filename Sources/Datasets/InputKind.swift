import FileFormats
import Foundation

/// What a path holds, judged by its content and never by its name: every command that takes a path
/// asks this first, so that a pack named fm.bin is read as a pack and a checkpoint named x.png is
/// refused as a checkpoint, with a message that says so.
public enum InputKind: Equatable, Sendable, CustomStringConvertible {
    case missing
    /// A folder (of images, for the commands that read one).
    case folder
    /// A safetensors file whose metadata says "format": "sagan-pack" (`sagan dataset pack`).
    case pack
    /// Safetensors files `sagan` writes, told apart by their metadata's "kind".
    case trainingCheckpoint
    case modelCheckpoint
    case export
    /// Any other safetensors file (saved latent codes, Inception weights, someone else's model).
    case safetensors
    /// An IDX array (MNIST's format): raw, or gzip-compressed.
    case idx(compressed: Bool)
    /// A JPEG, PNG, PGM or PPM image.
    case image(ImageFormat)
    /// A FIFO, a device or a socket: never opened (reading one may wait or never end).
    case special(String)
    /// None of these (or unreadable).
    case other

    /// The kind of `path`: folders by the file system, files by their first bytes.
    public static func of(_ path: String) -> InputKind {
        switch PathKind(path) {
        case .missing: return .missing
        case .folder: return .folder
        case .special(let name): return .special(name)
        case .regularFile: break
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { return .other }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        // Structure before short magic numbers: a safetensors file's first 8 bytes are its header's
        // length, which can spell "P5" (a header of 0x3550 bytes) or an IDX magic.
        if let kind = safetensorsKind(handle, head: head) { return kind }
        if let format = ImageFormat.sniff(head) { return .image(format) }
        if IDX.hasMagic(head) { return .idx(compressed: false) }
        // The only compressed files sagan reads are gzipped IDX files; the IDX reader checks the rest.
        if Gzip.isCompressed(head) { return .idx(compressed: true) }
        return .other
    }

    /// A safetensors file's kind from its header, or nil when the bytes are not a safetensors header.
    static func safetensorsKind(_ handle: FileHandle, head: Data) -> InputKind? {
        guard head.count >= 9, head[head.startIndex + 8] == UInt8(ascii: "{") else { return nil }
        let length = head.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard length >= 2, length <= 100_000_000, (try? handle.seek(toOffset: 8)) != nil,
            let bytes = try? handle.read(upToCount: Int(length)), bytes.count == Int(length),
            let header = (try? JSONValue(parsing: bytes))?.object
        else { return nil }
        let metadata = header["__metadata__"]?.object ?? [:]
        if metadata["format"]?.string == PackedDataset.formatName { return .pack }
        switch metadata["kind"]?.string {
        case "training": return .trainingCheckpoint
        case "checkpoint": return metadata["model_config"] == nil ? .safetensors : .modelCheckpoint
        case "export": return .export
        default: return .safetensors
        }
    }

    /// "a training checkpoint", "a PNG image", … as the messages say it.
    public var description: String {
        switch self {
        case .missing: return "missing (no such file or folder)"
        case .folder: return "a folder"
        case .pack: return "a packed dataset"
        case .trainingCheckpoint: return "a training checkpoint"
        case .modelCheckpoint: return "a model checkpoint"
        case .export: return "an exported generator"
        case .safetensors: return "a safetensors file that is not a sagan pack, checkpoint or export"
        case .idx(let compressed): return compressed ? "a gzip-compressed file (read as IDX)" : "an IDX file"
        case .image(let format): return "a \(format.rawValue.uppercased()) image"
        case .special(let name): return "\(name), not a file"
        case .other: return "not a file sagan reads (not an image, IDX, pack, checkpoint or export)"
        }
    }

    /// Whether this is one of the files that hold a generator.
    public var holdsGenerator: Bool { [.trainingCheckpoint, .modelCheckpoint, .export].contains(self) }

    /// Whether this is a set of images to read: a pack, a folder or an IDX file.
    public var isImageSet: Bool {
        switch self {
        case .pack, .folder, .idx: return true
        default: return false
        }
    }

    /// `path`'s kind when `accepts` takes it; otherwise the error "PATH is KIND; FLAG needs NEEDS"
    /// (exit status 64 in `sagan`); "PATH: no such file or folder" when nothing is there.
    @discardableResult
    public static func require(
        _ path: String, setting: Setting, needs: String, accepts: (InputKind) -> Bool
    ) throws -> InputKind {
        let kind = of(path)
        guard kind != .missing else { throw DataError(.unreadable, path, "no such file or folder") }
        guard accepts(kind) else {
            throw DataError(.wrongKind, "", "\(path) is \(kind); \(setting) needs \(needs)")
        }
        return kind
    }
}
