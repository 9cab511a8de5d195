import FileFormats
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

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
    /// Symbolic links that were not followed, with why: broken, or a loop back into the tree.
    public let unfollowed: [(path: String, reason: String)]
    private let idx: IDX.Array?

    public var isIDX: Bool { idx != nil }

    /// The images of `path`, which `flag` named (for the message when it is another kind of file).
    public init(path: String, setting: Setting = .source) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError(.unreadable, path, "no such file or folder")
        }
        try InputKind.require(path, setting: setting, needs: "an image folder or an IDX file") { kind in
            if case .idx = kind { return true }
            return kind == .folder || kind == .other  // other: the IDX reader says what is wrong with it
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
            unfollowed = []
            return
        }
        idx = nil
        var walk = FolderWalk()
        try walk.visit(URL(fileURLWithPath: path).standardizedFileURL, relative: [])
        var files: [(relative: [String], path: String)] = []
        var ignored: [String] = []
        for (relative, url) in walk.files {
            if ImageFormat.fromExtension(url.path) != nil || Self.looksLikeImage(url) {
                files.append((relative, url.path))
            } else {
                ignored.append(url.path)
            }
        }
        unfollowed = walk.unfollowed
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
        if case .image = InputKind.of(url.path) { return true }
        return false
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
                ThreadAffinity.allowProcessCPUs()
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

/// A folder tree's regular files, through symbolic links to files and folders (the root may be a
/// link too). A link is not followed when it is broken or leads back to a folder already on the
/// path being walked (a loop); both are listed. Hidden entries are skipped.
struct FolderWalk {
    var files: [(relative: [String], url: URL)] = []
    var unfollowed: [(path: String, reason: String)] = []
    /// (device, inode) of the folders on the current path, to stop loops.
    private var ancestors: [(UInt64, UInt64)] = []

    mutating func visit(_ folder: URL, relative: [String]) throws {
        var info = stat()
        guard stat(folder.path, &info) == 0 else {
            throw DataError(.unreadable, folder.path, "cannot read the folder (\(String(cString: strerror(errno))))")
        }
        let identity = (UInt64(info.st_dev), UInt64(info.st_ino))
        if ancestors.contains(where: { $0 == identity }) {
            unfollowed.append((folder.path, "a link back into a folder above it (a loop)"))
            return
        }
        ancestors.append(identity)
        defer { ancestors.removeLast() }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        } catch {
            throw DataError(.unreadable, folder.path, "cannot list the folder (\(error.localizedDescription))")
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let entry = folder.appendingPathComponent(name)
            var target = stat()
            guard stat(entry.path, &target) == 0 else {
                unfollowed.append((entry.path, "a broken link"))
                continue
            }
            switch target.st_mode & S_IFMT {
            case S_IFDIR: try visit(entry, relative: relative + [name])
            case S_IFREG: files.append((relative + [name], entry))
            default: unfollowed.append((entry.path, PathKind(entry.path).notAFile ?? "not a regular file"))
            }
        }
    }
}
