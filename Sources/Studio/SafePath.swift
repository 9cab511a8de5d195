import Foundation

/// Resolves paths that come from requests, so that nothing outside the served folder is reached.
public enum SafePath {
    /// Why a path is refused; the server answers 404 either way, so as not to tell what exists.
    public enum Refusal: Error, Equatable {
        case notRelative
        case leavesTheFolder
        case missing
    }

    /// `relative` (a "/"-separated path as a request gives it) inside `root`, which must be an absolute,
    /// symlink-free path: refused when absolute, when it has "..", a NUL or a backslash, or when a
    /// symlink along it leads out of `root`; also when nothing is there.
    public static func resolve(_ relative: String, under root: URL) throws -> URL {
        guard !relative.hasPrefix("/"), !relative.contains("\0"), !relative.contains("\\") else {
            throw Refusal.notRelative
        }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !parts.contains("..") else { throw Refusal.leavesTheFolder }
        var candidate = root
        for part in parts { candidate.appendPathComponent(String(part)) }
        guard let real = realpath(candidate.path, nil) else { throw Refusal.missing }
        defer { free(real) }
        let resolved = String(cString: real)
        guard resolved == root.path || resolved.hasPrefix(root.path == "/" ? "/" : root.path + "/") else {
            throw Refusal.leavesTheFolder
        }
        return URL(fileURLWithPath: resolved)
    }

}
