import FileFormats
import Foundation

/// What `dataset pack` does with a file it cannot use.
public enum BadFilePolicy: String, Sendable, CaseIterable {
    /// Leave it out, list it beside the output, and say so in the summary.
    case skip
    /// Stop at the first one, naming the file and the reason; nothing is written.
    case fail
}

public struct PackOptions: Sendable {
    public var resolution: Int
    public var channels: Int
    public var crop: CropPolicy
    /// Background pixels added on every side before cropping (2 turns MNIST's 28x28 into 32x32).
    public var padding: Int
    public var onBad: BadFilePolicy
    /// Class names to record instead of the source's (IDX files only number their classes).
    public var labelNames: [String]?

    public init(
        resolution: Int, channels: Int = 3, crop: CropPolicy = .center, padding: Int = 0, onBad: BadFilePolicy = .skip,
        labelNames: [String]? = nil
    ) {
        self.resolution = resolution
        self.channels = channels
        self.crop = crop
        self.padding = padding
        self.onBad = onBad
        self.labelNames = labelNames
    }

    public func validate() throws {
        guard (4...4096).contains(resolution) else {
            throw DataError(.invalidArgument, "\(Setting.resolution)", "resolution \(resolution) must be 4 to 4096")
        }
        guard channels == 1 || channels == 3 else {
            throw DataError(.invalidArgument, "\(Setting.channels)", "channels must be 1 or 3, got \(channels)")
        }
        guard (0...1024).contains(padding) else {
            throw DataError(.invalidArgument, "\(Setting.padding)", "padding \(padding) must be 0 to 1024")
        }
    }
}

/// What a pack did.
public struct PackSummary: Sendable {
    public var packed = 0
    public var skipped: [DataError] = []
    /// Source modes ("RGB", "gray", "CMYK", "RGBA 16-bit", …) and how many images had each.
    public var modes: [String: Int] = [:]
    /// Images whose channels were converted to the requested count.
    public var converted = 0
    public var orientationApplied = 0
    public var nonSquare = 0
    /// Images the decoder reported recoverable corruption in (packed anyway).
    public var decodedWithWarnings = 0
    public var ignored = 0
    /// Symbolic links not followed (broken, or loops), with why.
    public var unfollowed: [(path: String, reason: String)] = []
    public var skippedListPath: String?
    public var labelNames: [String] = []
    public var labelNote: String?
}

public enum DatasetPacker {
    /// Decodes, converts, crops, resizes and writes every image of `source` to `destination`.
    public static func pack(
        source path: String, destination: URL, options: PackOptions,
        progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> PackSummary {
        try options.validate()
        let source = try DatasetSource(path: path)
        guard !source.items.isEmpty else { throw DataError(.invalidArgument, path, "no images found") }
        var summary = PackSummary()
        summary.ignored = source.ignored.count
        summary.unfollowed = source.unfollowed
        summary.labelNames =
            options.labelNames.flatMap { $0.count >= source.labelNames.count ? $0 : nil } ?? source.labelNames
        summary.labelNote = source.labelNote
        removeStaleTemporaries(in: destination.deletingLastPathComponent())
        let writer = try PackedDatasetWriter(
            destination: destination, height: options.resolution, width: options.resolution,
            channels: options.channels)
        var digest = SHA256()
        let hasLabels = source.items.first?.label != nil
        let chunk = 256
        var start = 0
        while start < source.items.count {
            let (first, end) = (start, min(start + chunk, source.items.count))
            let results = parallelMap(
                end - first, chunk: end - first,
                { offset in
                    Result { try prepare(source.items[first + offset], source: source, options: options) }
                }, completed: { _ in })
            for (offset, result) in results.enumerated() {
                let item = source.items[start + offset]
                switch result {
                case .success(let prepared):
                    try writer.append(prepared.image, label: hasLabels ? item.label : nil)
                    digest.update("\(relativeName(item.path, root: path))\u{0}\(prepared.digest)\u{0}")
                    summary.packed += 1
                    summary.modes[prepared.mode, default: 0] += 1
                    if prepared.converted { summary.converted += 1 }
                    if prepared.oriented { summary.orientationApplied += 1 }
                    if prepared.nonSquare { summary.nonSquare += 1 }
                    if prepared.warnings { summary.decodedWithWarnings += 1 }
                case .failure(let error):
                    let problem = error as? DataError ?? DataError(.corrupt, item.path, "\(error)")
                    if options.onBad == .fail { throw problem }
                    summary.skipped.append(problem)
                }
            }
            start = end
            progress(end, source.items.count)
            // Stopping here drops the writer, which removes its partial file: the destination is untouched.
            if let signal = StopSignals.received {
                throw PackInterrupted(signal: signal, destination: destination.path)
            }
        }
        let metadata = [
            "source": path, "source_digest": digest.finalize(), "crop": options.crop.rawValue,
            "padding": String(options.padding),
            "resize_filter": Resampling.filterName, "created": ISO8601DateFormatter().string(from: Date()),
            "tool_version": "sagan", "skipped": String(summary.skipped.count),
        ]
        try writer.finish(metadata: metadata, labelNames: hasLabels ? summary.labelNames : [])
        if !summary.skipped.isEmpty {
            let list = destination.path + ".skipped.txt"
            let lines =
                summary.skipped.map { "\($0.path)\t\($0.kind.rawValue)\t\($0.reason)" }.joined(separator: "\n") + "\n"
            try writeAtomically(Data(lines.utf8), to: URL(fileURLWithPath: list))
            summary.skippedListPath = list
        }
        return summary
    }

    struct Prepared: Sendable {
        let image: PixelImage
        let digest: String
        let mode: String
        let converted: Bool
        let oriented: Bool
        let nonSquare: Bool
        let warnings: Bool
    }

    static func prepare(_ item: SourceItem, source: DatasetSource, options: PackOptions) throws -> Prepared {
        let bytes = try source.bytes(of: item)
        let decoded = try source.decode(item, bytes: bytes)
        var image = decoded.image
        let converted = image.channels != options.channels
        image = image.converted(toChannels: options.channels)
        if options.padding > 0 { image = image.padded(by: options.padding) }
        let nonSquare = image.width != image.height
        let box = options.crop.box(width: image.width, height: image.height)
        if box.width != image.width || box.height != image.height {
            image = image.cropped(left: box.left, top: box.top, width: box.width, height: box.height)
        }
        image = Resampling.resize(image, width: options.resolution, height: options.resolution)
        let digest =
            item.idxIndex == nil
            ? bytes.withUnsafeBytes { buffer in
                var hasher = SHA256()
                hasher.update(buffer)
                return hasher.finalize()
            } : SHA256.hex(decoded.image.pixels)
        return Prepared(
            image: image, digest: digest, mode: decoded.mode, converted: converted,
            oriented: decoded.orientationApplied != nil, nonSquare: nonSquare, warnings: decoded.warnings > 0)
    }

    static func relativeName(_ path: String, root: String) -> String {
        path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }
}

/// A pack stopped by SIGINT or SIGTERM (`StopSignals`); nothing was written to the destination.
public struct PackInterrupted: Error, Equatable, CustomStringConvertible {
    public let signal: Int32
    public let destination: String

    public var description: String {
        "interrupted by signal \(signal): \(destination) was not written (run the pack again to make it)"
    }
}
