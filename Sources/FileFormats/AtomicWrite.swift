import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes `data` to `url` through a temporary file in the same folder that is fsynced and renamed,
/// so readers see either the old file or the complete new one.
public func writeAtomically(_ data: Data, to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
        throw FileWriteError(file: url.path, reason: "cannot create \(temporary.path)")
    }
    do {
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary.path, url.path) == 0 else {
            throw FileWriteError(file: url.path, reason: "cannot rename the temporary file into place (errno \(errno))")
        }
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw error
    }
}

/// A file that could not be written; names the file and says why.
public struct FileWriteError: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}
