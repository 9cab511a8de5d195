import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes `data` to `url` through a temporary file in the same folder that is fsynced and renamed,
/// so readers see either the old file or the complete new one. Only a new name or a regular file is
/// replaced (`checkReplaceable`): never a device, FIFO or folder. Failures (a missing folder, no
/// permission, a full disk) are `FileWriteError`s naming the file, and leave no temporary behind.
public func writeAtomically(_ data: Data, to url: URL) throws {
    try checkReplaceable(url)
    let folder = url.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw FileWriteError(file: url.path, reason: "the folder \(folder.path) does not exist")
    }
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
        throw FileWriteError(
            file: url.path, reason: "cannot create a file in \(folder.path) (\(String(cString: strerror(errno))))")
    }
    do {
        let handle = try FileHandle(forWritingTo: temporary)
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            throw FileWriteError(
                file: url.path, reason: "cannot write \(data.count) bytes (\(error.localizedDescription))")
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw FileWriteError(
                file: url.path, reason: "cannot move the finished file into place (\(String(cString: strerror(errno))))"
            )
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

/// Removes the temporary files that writers left in `folder` when their process died before the
/// rename: `.NAME.PID.tmp` (`writeAtomically`) and `.NAME.PID.partial` (a dataset pack) whose PID no
/// longer runs. Returns the files removed.
@discardableResult
public func removeStaleTemporaries(in folder: URL) -> [URL] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    var removed: [URL] = []
    for name in names where name.hasPrefix(".") {
        guard let suffix = [".tmp", ".partial"].first(where: name.hasSuffix) else { continue }
        let parts = name.dropLast(suffix.count).split(separator: ".")
        guard let pid = parts.last.flatMap({ Int32($0) }), pid != getpid() else { continue }
        guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
        let file = folder.appendingPathComponent(name)
        if (try? FileManager.default.removeItem(at: file)) != nil { removed.append(file) }
    }
    return removed
}
