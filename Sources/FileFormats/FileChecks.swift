import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What is at a path, as far as reading and writing it safely goes. Opening a FIFO to read waits
/// for a writer (for ever), reading a device may never end (/dev/zero), and replacing one by
/// renaming a finished file over it destroys it (as root, `--out /dev/null` would replace
/// /dev/null): such paths are refused before anything is opened.
public enum PathKind: Equatable, Sendable {
    case missing
    case regularFile
    case folder
    /// A FIFO, a device or a socket, with its name for messages ("a FIFO").
    case special(String)

    /// The kind of `path`, following symlinks (a broken link is missing).
    public init(_ path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            self = .missing
            return
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG: self = .regularFile
        case S_IFDIR: self = .folder
        case S_IFIFO: self = .special("a FIFO")
        case S_IFCHR: self = .special("a character device")
        case S_IFBLK: self = .special("a block device")
        case S_IFSOCK: self = .special("a socket")
        default: self = .special("not a regular file")
        }
    }

    /// "a FIFO, not a file", "a folder, not a file": why a file was expected and this is not one.
    public var notAFile: String? {
        switch self {
        case .special(let name): return "\(name), not a file"
        case .folder: return "a folder, not a file"
        case .missing, .regularFile: return nil
        }
    }
}

/// Throws unless `url` names nothing yet or a regular file that may be replaced: a folder, FIFO,
/// device or socket at an output path is left alone, with an error naming it.
public func checkReplaceable(_ url: URL) throws {
    if let reason = PathKind(url.path).notAFile {
        throw FileWriteError(file: url.path, reason: "is \(reason); give a new file name or a file to replace")
    }
}

/// Throws when `output` already exists as one of `inputs` (the same file under any name or link):
/// writing it would destroy what is being read (`export --out` naming its own `--checkpoint`).
public func checkDistinct(output: URL, from inputs: [URL]) throws {
    var written = stat()
    guard stat(output.path, &written) == 0 else { return }
    for input in inputs {
        var read = stat()
        if stat(input.path, &read) == 0, read.st_dev == written.st_dev, read.st_ino == written.st_ino {
            throw FileWriteError(
                file: output.path, reason: "is also an input of this command (\(input.path)); write to another file")
        }
    }
}
