import FileFormats
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A packed dataset: one safetensors file (so any safetensors reader can open it) holding
///
///     images   U8  [N, H, W, C]   pixels, row-major, channels interleaved
///     labels   I64 [N]            class indices (optional)
///
/// and in `__metadata__`: `format` = "sagan-pack", `version` = "1", `count`, `height`, `width`,
/// `channels`, `label_count`, `label_names` (JSON list), `source_digest` (SHA-256 of the source files),
/// `source`, `crop`, `resize_filter`, `created`. Opening memory-maps the file: images are read on demand.
public struct PackedDataset: Sendable {
    public static let formatName = "sagan-pack"
    public static let version = "1"

    public let url: URL
    public let count: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    public let labelNames: [String]
    public let metadata: [String: String]
    private let file: SafeTensorsFile
    private let labels: [Int]?

    public var hasLabels: Bool { labels != nil }
    public var sourceDigest: String { metadata["source_digest"] ?? "" }
    public var imageBytes: Int { height * width * channels }

    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DataError(.unreadable, url.path, "no such file")
        }
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(contentsOf: url)
        } catch let error as SafeTensorsError {
            let reason =
                error.description.hasPrefix(url.path + ": ")
                ? String(error.description.dropFirst(url.path.count + 2)) : error.description
            throw DataError(
                reason.contains("truncated") ? .truncated : .corrupt, url.path, "not a valid packed dataset: \(reason)")
        }
        guard file.metadata["format"] == Self.formatName else {
            throw DataError(
                .unsupported, url.path,
                "not a sagan packed dataset (metadata format is "
                    + "\(file.metadata["format"].map { "\"\($0)\"" } ?? "missing"))"
            )
        }
        guard file.metadata["version"] == Self.version else {
            throw DataError(
                .unsupported, url.path,
                "packed dataset version \(file.metadata["version"] ?? "?") is not supported (this tool reads "
                    + "\(Self.version))"
            )
        }
        guard let images = file.entries["images"], images.dtype == .U8, images.shape.count == 4,
            images.shape[3] == 1 || images.shape[3] == 3, images.shape.allSatisfy({ $0 > 0 })
        else {
            throw DataError(.corrupt, url.path, "the images tensor must be U8 [count, height, width, 1 or 3]")
        }
        self.url = url
        self.file = file
        (count, height, width, channels) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        metadata = file.metadata
        let names =
            (file.metadata["label_names"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) })
            ?? []
        labelNames = names
        let count = self.count
        if let entry = file.entries["labels"] {
            guard entry.dtype == .I64, entry.shape == [count] else {
                throw DataError(
                    .corrupt, url.path,
                    "the labels tensor must be I64 [\(count)], found \(entry.dtype.rawValue) \(entry.shape)")
            }
            let values = try file.withBytes(of: "labels") { bytes in
                (0..<count).map {
                    Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)))
                }
            }
            if let bad = values.first(where: { $0 < 0 || (!names.isEmpty && $0 >= names.count) }) {
                throw DataError(.corrupt, url.path, "label \(bad) is outside 0..<\(names.count)")
            }
            labels = values
        } else {
            labels = nil
        }
    }

    /// Calls `body` with image `index`'s H·W·C bytes, straight from the mapped file.
    public func withImage<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        require(index >= 0 && index < count, "PackedDataset: image \(index) is outside 0..<\(count)")
        return try file.withBytes(of: "images") { all in
            try body(UnsafeRawBufferPointer(rebasing: all[(index * imageBytes)..<((index + 1) * imageBytes)]))
        }
    }

    public func image(_ index: Int) throws -> PixelImage {
        try withImage(index) { PixelImage(width: width, height: height, channels: channels, pixels: Array($0)) }
    }

    public func label(_ index: Int) -> Int? { labels?[index] }
}

/// Writes a packed dataset image by image, without holding the images in memory: pixels stream to
/// a temporary file behind a reserved header, which is filled in when the count is known; the file
/// is then flushed and renamed into place, so an interrupted pack never leaves a partial dataset.
public final class PackedDatasetWriter {
    public let destination: URL
    public let height: Int
    public let width: Int
    public let channels: Int
    public private(set) var count = 0
    private var labels: [Int64] = []
    private let temporary: URL
    private let handle: FileHandle
    private var finished = false
    /// Room for the JSON header; unused space is padding, which the format allows.
    private static let reservedHeader = 1 << 16

    public init(destination: URL, height: Int, width: Int, channels: Int) throws {
        self.destination = destination
        self.height = height
        self.width = width
        self.channels = channels
        try checkReplaceable(destination)
        temporary = destination.deletingLastPathComponent().appendingPathComponent(
            ".\(destination.lastPathComponent).\(getpid()).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw DataError(.unreadable, destination.path, "cannot create \(temporary.path)")
        }
        handle = try FileHandle(forWritingTo: temporary)
        try handle.write(contentsOf: Data(count: 8 + Self.reservedHeader))
    }

    deinit {
        if !finished {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
        }
    }

    /// Appends one image of the writer's size (and its label, if the dataset has labels).
    public func append(_ image: PixelImage, label: Int?) throws {
        require(
            image.width == width && image.height == height && image.channels == channels,
            "PackedDatasetWriter: image \(image.width)x\(image.height)x\(image.channels) does not match "
                + "\(width)x\(height)x\(channels)"
        )
        require(
            (label == nil) == (count > 0 && labels.isEmpty) || count == 0,
            "PackedDatasetWriter: every image needs a label, or none")
        try handle.write(contentsOf: image.pixels)
        if let label { labels.append(Int64(label)) }
        count += 1
    }

    /// Writes the labels and the header, flushes, and renames the file into place.
    public func finish(metadata: [String: String], labelNames: [String]) throws {
        guard count > 0 else { throw DataError(.invalidArgument, destination.path, "no images to pack") }
        let imageBytes = count * height * width * channels
        let imageShape = "[\(count),\(height),\(width),\(channels)]"
        var tensors = "\"images\":{\"dtype\":\"U8\",\"shape\":\(imageShape),\"data_offsets\":[0,\(imageBytes)]}"
        if !labels.isEmpty {
            try handle.write(contentsOf: labels.withUnsafeBytes { Data($0) })
            let labelOffsets = "[\(imageBytes),\(imageBytes + 8 * count)]"
            tensors += ",\"labels\":{\"dtype\":\"I64\",\"shape\":[\(count)],\"data_offsets\":\(labelOffsets)}"
        }
        var fields = metadata
        fields["format"] = PackedDataset.formatName
        fields["version"] = PackedDataset.version
        fields["count"] = String(count)
        fields["height"] = String(height)
        fields["width"] = String(width)
        fields["channels"] = String(channels)
        fields["label_count"] = String(labelNames.count)
        fields["label_names"] = String(decoding: try JSONEncoder().encode(labelNames), as: UTF8.self)
        let encodedMetadata = JSONValue.object(fields.mapValues(JSONValue.string)).serialized()
        var header = Array("{\"__metadata__\":".utf8) + Array(encodedMetadata) + Array(",\(tensors)}".utf8)
        guard header.count <= Self.reservedHeader else {
            throw DataError(.invalidArgument, destination.path, "dataset metadata is too large (\(header.count) bytes)")
        }
        header += [UInt8](repeating: UInt8(ascii: " "), count: Self.reservedHeader - header.count)
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: withUnsafeBytes(of: UInt64(Self.reservedHeader).littleEndian) { Data($0) })
        try handle.write(contentsOf: header)
        try handle.synchronize()
        try handle.close()
        try checkReplaceable(destination)
        guard rename(temporary.path, destination.path) == 0 else {
            throw DataError(.unreadable, destination.path, "cannot rename the packed file into place (errno \(errno))")
        }
        finished = true
    }
}
