import FileFormats
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// metrics.jsonl, which more than one process writes: the trainer, and `sagan eval` of one of the
/// run's checkpoints while it trains. Each row is one write(2) through a descriptor opened with
/// O_APPEND, under an exclusive flock, so rows never splice into each other. A resume's truncation
/// takes the same lock and renames a trimmed copy into place; a writer that finds the file replaced
/// while it waited for the lock opens the new one. Rows that another command wrote (`source`) are
/// never dropped by a truncation: the trainer does not write them again.
public enum MetricsFile {
    /// The key of rows written by a command other than the trainer (`sagan eval`).
    public static let sourceKey = "source"

    /// Appends `row` as one line.
    public static func append(_ row: JSONValue, to url: URL) throws {
        try checkReplaceable(url)
        let line = row.jsonLine()
        while true {
            let descriptor = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw failure(url, "cannot open it") }
            defer { close(descriptor) }
            guard flock(descriptor, LOCK_EX) == 0 else { throw failure(url, "cannot lock it") }
            guard isCurrent(descriptor, url) else { continue }  // renamed by a truncation meanwhile
            var written = 0
            while written < line.count {
                let count = line.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, line.count - written) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw failure(url, "cannot append a row") }
                written += count
            }
            return
        }
    }

    /// The complete rows that parse as JSON objects (a half-written last line is left out).
    public static func rows(_ url: URL) -> [JSONValue] {
        guard PathKind(url.path) == .regularFile, let data = try? Data(contentsOf: url) else { return [] }
        return lines(of: data).compactMap { try? JSONValue(parsing: $0) }.filter { $0.object != nil }
    }

    /// Keeps the rows `keep` accepts, and those another command wrote; drops a half-written last
    /// line and lines that do not parse. Nothing is rewritten when nothing goes.
    public static func truncate(_ url: URL, keeping keep: (JSONValue) -> Bool) throws {
        guard PathKind(url.path) == .regularFile else { return }
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(url, "cannot open it") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw failure(url, "cannot lock it") }
        let data = try FileHandle(fileDescriptor: descriptor, closeOnDealloc: false).readToEnd() ?? Data()
        let all = lines(of: data)
        let kept = all.filter { line in
            guard let row = try? JSONValue(parsing: line), row.object != nil else { return false }
            return row[sourceKey] != nil || keep(row)
        }
        guard kept.count != all.count || (!data.isEmpty && data.last != 0x0A) else { return }
        var trimmed = Data()
        for line in kept { trimmed += line + [0x0A] }
        try writeAtomically(trimmed, to: url)
    }

    static func lines(of data: Data) -> [Data] {
        data.split(separator: 0x0A, omittingEmptySubsequences: true).map { Data($0) }
    }

    static func isCurrent(_ descriptor: Int32, _ url: URL) -> Bool {
        var (open, named) = (stat(), stat())
        return fstat(descriptor, &open) == 0 && stat(url.path, &named) == 0 && open.st_ino == named.st_ino
            && open.st_dev == named.st_dev
    }

    static func failure(_ url: URL, _ what: String) -> FileWriteError {
        FileWriteError(file: url.path, reason: "\(what) (\(String(cString: strerror(errno))))")
    }
}
