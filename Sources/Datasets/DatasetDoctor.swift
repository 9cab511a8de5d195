import Foundation

/// What `dataset check` found.
public struct CheckReport: Sendable {
    public var files = 0
    public var images = 0
    public var bytes = 0
    /// "W×H" → count.
    public var sizes: [String: Int] = [:]
    /// Aspect ratio (width / height, two decimals) → count.
    public var aspectRatios: [String: Int] = [:]
    public var modes: [String: Int] = [:]
    public var formats: [String: Int] = [:]
    public var orientationTagged = 0
    public var decodedWithWarnings = 0
    public var smallest: (width: Int, height: Int)?
    public var bad: [DataError] = []
    /// Groups of byte-identical files (two or more paths each).
    public var duplicates: [[String]] = []
    public var ignored: [String] = []
    /// Symbolic links not followed (broken, or loops), with why.
    public var unfollowed: [(path: String, reason: String)] = []
    public var labelNames: [String] = []
    public var labelCounts: [Int] = []
    public var labelNote: String?
}

public enum DatasetDoctor {
    /// Reads and decodes every image of `source` and reports what is there and what is wrong.
    public static func check(source path: String, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws
        -> CheckReport
    {
        let source = try DatasetSource(path: path)
        var report = CheckReport()
        report.files = source.items.count
        report.ignored = source.ignored
        report.unfollowed = source.unfollowed
        report.labelNames = source.labelNames
        report.labelNote = source.labelNote
        report.labelCounts = [Int](repeating: 0, count: source.labelNames.count)
        struct Finding: Sendable {
            let decoded: DecodedImage?
            let error: DataError?
            let bytes: Int
            let digest: String?
        }
        let findings = parallelMap(
            source.items.count,
            { index in
                let item = source.items[index]
                do {
                    let bytes = try source.bytes(of: item)
                    let digest: String? =
                        source.isIDX
                        ? nil
                        : bytes.withUnsafeBytes { buffer in
                            var hasher = SHA256()
                            hasher.update(buffer)
                            return hasher.finalize()
                        }
                    do {
                        return Finding(
                            decoded: try source.decode(item, bytes: bytes), error: nil, bytes: bytes.count,
                            digest: digest)
                    } catch {
                        return Finding(
                            decoded: nil, error: error as? DataError ?? DataError(.corrupt, item.path, "\(error)"),
                            bytes: bytes.count, digest: digest)
                    }
                } catch {
                    return Finding(
                        decoded: nil, error: error as? DataError ?? DataError(.unreadable, item.path, "\(error)"),
                        bytes: 0, digest: nil)
                }
            }, completed: { progress($0, source.items.count) })
        var byDigest: [String: [String]] = [:]
        for (item, finding) in zip(source.items, findings) {
            report.bytes += finding.bytes
            if let digest = finding.digest { byDigest[digest, default: []].append(item.path) }
            guard let decoded = finding.decoded else {
                report.bad.append(finding.error!)
                continue
            }
            report.images += 1
            let image = decoded.image
            report.sizes["\(image.width)x\(image.height)", default: 0] += 1
            report.aspectRatios[String(format: "%.2f", Double(image.width) / Double(image.height)), default: 0] += 1
            report.modes[decoded.mode, default: 0] += 1
            report.formats[decoded.format.rawValue, default: 0] += 1
            if decoded.orientationApplied != nil { report.orientationTagged += 1 }
            if decoded.warnings > 0 { report.decodedWithWarnings += 1 }
            if let smallest = report.smallest, smallest.width * smallest.height <= image.width * image.height {
            } else {
                report.smallest = (image.width, image.height)
            }
            if let label = item.label { report.labelCounts[label] += 1 }
        }
        report.duplicates = byDigest.values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }
        return report
    }
}
