import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive claim on a run folder: `flock` on RUN/.lock, which holds the owner's PID. The
/// kernel releases it when the owner exits or dies, so a crashed run never blocks the next one.
public final class RunFolderLock {
    public let folder: URL
    private let descriptor: Int32

    /// Creates the folder if needed and claims it, or throws `TrainingRunError.folderInUse` naming the
    /// process that holds it (`folderUnusable` when the folder cannot be made or written).
    public init(_ folder: URL) throws {
        self.folder = folder
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw TrainingRunError.folderUnusable(folder.path, reason: "is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw TrainingRunError.folderUnusable(
                folder.path, reason: "cannot create it (\(error.localizedDescription))")
        }
        let path = folder.appendingPathComponent(".lock").path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TrainingRunError.folderUnusable(
                folder.path, reason: "cannot write in it (\(String(cString: strerror(errno))))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(descriptor, &buffer, buffer.count, 0)
            close(descriptor)
            let owner =
                Int32(
                    String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            throw TrainingRunError.folderInUse(folder.path, pid: owner)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.count, 0)
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}
