import Foundation

/// One input image: a file, or one entry of an IDX file.
public struct SourceItem: Sendable {
    /// The file; for IDX entries the IDX file with `#index` appended.
    public let path: String
    public let label: Int?
    /// For IDX sources: the entry's index.
    let idxIndex: Int?
}

/// What `dataset pack` and `dataset check` read: a folder tree of images (labels from first-level
/// sub-folder names) or an MNIST-style IDX image file (labels from the matching labels file).
public struct DatasetSource: Sendable {
    public let root: String
    public let items: [SourceItem]
    public let labelNames: [String]
    /// Files that are not images (by content and extension), left out.
    public let ignored: [String]
    /// Why there are no labels although sub-folders exist, if so.
    public let labelNote: String?
    private let idx: IDX.Array?

    public var isIDX: Bool { idx != nil }

    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError(.unreadable, path, "no such file or folder")
        }
        root = path
        if !isDirectory.boolValue {
            let images = try IDX.read(path)
            guard
                images.dimensions.count == 3 || (images.dimensions.count == 4 && [1, 3].contains(images.dimensions[3]))
            else {
                throw DataError(
                    .unsupported, path,
                    "IDX images must be [count, height, width] or [count, height, width, 1|3], found "
                        + "\(images.dimensions)"
                )
            }
            idx = images
            var labels: [Int]?
            var note: String?
            let labelsPath = Self.labelsFile(for: path)
            if let labelsPath, FileManager.default.fileExists(atPath: labelsPath) {
                let labelArray = try IDX.read(labelsPath)
                guard labelArray.dimensions == [images.dimensions[0]] else {
                    throw DataError(
                        .corrupt, labelsPath,
                        "labels \(labelArray.dimensions) do not match \(images.dimensions[0]) images in \(path)")
                }
                labels = labelArray.values.map(Int.init)
            } else {
                note = "no labels file beside \(path)\(labelsPath.map { " (looked for \($0))" } ?? "")"
            }
            let classes = (labels?.max() ?? -1) + 1
            labelNames = (0..<classes).map(String.init)
            labelNote = note
            items = (0..<images.dimensions[0]).map {
                SourceItem(path: "\(path)#\($0)", label: labels?[$0], idxIndex: $0)
            }
            ignored = []
            return
        }
        idx = nil
        let rootURL = URL(fileURLWithPath: path).standardizedFileURL
        guard
            let enumerator = FileManager.default.enumerator(
                at: rootURL, includingPropertiesForKeys: [.isRegularFileKey],
                options: [.skipsHiddenFiles])
        else {
            throw DataError(.unreadable, path, "cannot list the folder")
        }
        var files: [(relative: [String], path: String)] = []
        var ignored: [String] = []
        for case let url as URL in enumerator {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let relative = Array(url.standardizedFileURL.pathComponents.dropFirst(rootURL.pathComponents.count))
            if ImageFormat.fromExtension(url.path) != nil || Self.looksLikeImage(url) {
                files.append((relative, url.path))
            } else {
                ignored.append(url.path)
            }
        }
        files.sort { $0.relative.lexicographicallyPrecedes($1.relative) }
        let folders = Set(files.compactMap { $0.relative.count > 1 ? $0.relative[0] : nil }).sorted()
        let allInFolders = !files.isEmpty && files.allSatisfy { $0.relative.count > 1 }
        labelNames = allInFolders ? folders : []
        labelNote =
            !folders.isEmpty && !allInFolders
            ? "some images lie directly in \(path), so sub-folder names are not used as labels" : nil
        let index = Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { ($1, $0) })
        items = files.map {
            SourceItem(path: $0.path, label: allInFolders ? index[$0.relative[0]] : nil, idxIndex: nil)
        }
        self.ignored = ignored.sorted()
    }

    /// train-images-idx3-ubyte.gz → train-labels-idx1-ubyte.gz (or the same without .gz, whichever exists).
    static func labelsFile(for imagesPath: String) -> String? {
        let name = (imagesPath as NSString).lastPathComponent
        guard name.contains("images-idx3") else { return nil }
        let folder = (imagesPath as NSString).deletingLastPathComponent as NSString
        let labels = name.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
        let plain = labels.hasSuffix(".gz") ? String(labels.dropLast(3)) : labels
        let candidates = [labels, plain, plain + ".gz"].map { folder.appendingPathComponent($0) }
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }

    static func looksLikeImage(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        return ImageFormat.sniff((try? handle.read(upToCount: 8)) ?? Data()) != nil
    }

    /// Item `index`, decoded (files by content, with their EXIF orientation applied).
    public func image(_ index: Int) throws -> PixelImage {
        try decode(items[index], bytes: bytes(of: items[index])).image
    }

    /// SHA-256 over the items' contents in order (file bytes, or the IDX pixels): names the
    /// images, not where they are.
    public func contentDigest() throws -> String {
        var hasher = SHA256()
        if let idx {
            idx.values.withUnsafeBytes { hasher.update($0) }
        } else {
            for item in items { try bytes(of: item).withUnsafeBytes { hasher.update($0) } }
        }
        return hasher.finalize()
    }

    /// The raw bytes of a file item (empty for IDX items).
    func bytes(of item: SourceItem) throws -> Data {
        guard item.idxIndex == nil else { return Data() }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: item.path), options: .mappedIfSafe)
        } catch {
            throw DataError(.unreadable, item.path, "cannot read: \(error.localizedDescription)")
        }
    }

    /// Decodes one item: IDX entries directly, files by content, refusing a content/extension mismatch.
    func decode(_ item: SourceItem, bytes: Data) throws -> DecodedImage {
        if let index = item.idxIndex, let idx {
            let (height, width) = (idx.dimensions[1], idx.dimensions[2])
            let channels = idx.dimensions.count == 4 ? idx.dimensions[3] : 1
            let size = height * width * channels
            let image = PixelImage(
                width: width, height: height, channels: channels,
                pixels: Array(idx.values[(index * size)..<((index + 1) * size)]))
            return DecodedImage(
                image: image, format: .idx, mode: channels == 1 ? "gray" : "RGB", orientationApplied: nil, warnings: 0)
        }
        guard !bytes.isEmpty else { throw DataError(.zeroByte, item.path, "empty file (0 bytes)") }
        if let claimed = ImageFormat.fromExtension(item.path), let actual = ImageFormat.sniff(bytes), claimed != actual
        {
            throw DataError(
                .wrongExtension, item.path,
                "\(actual.rawValue.uppercased()) data in a file named like \(claimed.rawValue.uppercased())")
        }
        return try ImageCodec.decode(bytes, path: item.path)
    }
}

/// Runs `work` on every index on two threads (the machines have two cores) and returns the
/// results in order; `completed` is told how many are done after each chunk. Plain threads, not
/// GCD: under OMP_PROC_BIND the process looks like one CPU to GCD, which then runs serially.
func parallelMap<T: Sendable>(
    _ count: Int, chunk: Int = 64, _ work: @escaping @Sendable (Int) -> T, completed: (Int) -> Void
) -> [T] {
    let results = ResultSlots<T>(count)
    var start = 0
    while start < count {
        let (first, end) = (start, min(start + chunk, count))
        let done = DispatchSemaphore(value: 0)
        for worker in 0..<2 {
            let thread = Thread {
                ThreadAffinity.allowAllCPUs()
                for index in stride(from: first + worker, to: end, by: 2) { results.set(index, work(index)) }
                done.signal()
            }
            thread.start()
        }
        done.wait()
        done.wait()
        start = end
        completed(end)
    }
    return results.values
}

/// Slots written by concurrent workers, each slot by one worker.
private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()

    init(_ count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: T) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    var values: [T] { slots.map { $0! } }
}
