import FileFormats
import Foundation
import GAN
import Synchronization

/// The training runs under one folder, read from their files on every request (a run that is
/// still training changes between two requests): run.json, metrics.jsonl, samples/ and checkpoints/;
/// only what the list shows of each log is kept, while the log stays the same.
public final class RunCatalog: Sendable {
    /// The folder `sagan studio --runs` names; nothing outside it is ever read or served.
    public let root: URL
    /// How deep below the root runs are looked for (runs/study/tiny32-seed1 is two levels).
    static let searchDepth = 3
    /// What the list needs from each log, read again only when the log changes.
    private let digests = Mutex<[String: LogDigest]>([:])

    public init(root: URL) {
        let resolved = realpath(root.path, nil)
        defer { free(resolved) }
        self.root = resolved.map { URL(fileURLWithPath: String(cString: $0)) } ?? root.standardizedFileURL
    }

    /// Every run's id: its path relative to the root ("." when the root is a run itself), sorted.
    public func runIDs() -> [String] {
        var found: [String] = []
        func visit(_ folder: URL, _ id: String, depth: Int) {
            if isRun(folder) {
                found.append(id)
                return
            }
            guard depth < Self.searchDepth,
                let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path)
            else { return }
            for name in names.sorted() where !name.hasPrefix(".") {
                let child = folder.appendingPathComponent(name)
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: child.path, isDirectory: &isFolder), isFolder.boolValue,
                    (try? SafePath.resolve(id == "." ? name : id + "/" + name, under: root)) != nil
                else { continue }
                visit(child, id == "." ? name : id + "/" + name, depth: depth + 1)
            }
        }
        visit(root, ".", depth: 0)
        return found
    }

    func isRun(_ folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent("run.json").path)
            || FileManager.default.fileExists(atPath: folder.appendingPathComponent("metrics.jsonl").path)
    }

    /// The folder of run `id`, or nil (never a folder outside the root, nor one that is not a run).
    public func folder(of id: String) -> URL? {
        guard let folder = try? SafePath.resolve(id, under: root), isRun(folder) else { return nil }
        return folder
    }

    /// `name` (a path in a run folder) when it is a regular file inside the run: never a file a
    /// symlink leads to outside, nor a FIFO (reading one waits forever), a device or a socket.
    public func file(_ name: String, of folder: URL) -> URL? {
        guard let file = try? SafePath.resolve(name, under: folder), PathKind(file.path) == .regularFile else {
            return nil
        }
        return file
    }

    /// The run's settings and its latest numbers, for the list of runs.
    public func summary(of id: String) -> RunSummary? {
        guard let folder = folder(of: id) else { return nil }
        let info = file("run.json", of: folder).flatMap { try? JSONValue(parsing: Data(contentsOf: $0)) }
        let config = info?["config"]
        let model = config?["model"]
        let log = file("metrics.jsonl", of: folder)
        let attributes = log.flatMap { try? FileManager.default.attributesOfItem(atPath: $0.path) }
        let modified = attributes?[.modificationDate] as? Date
        let size = attributes?[.size] as? Int ?? 0
        let digest =
            digests.withLock { $0[id] }.flatMap { $0.size == size && $0.modified == modified ? $0 : nil }
            ?? LogDigest(log.map(MetricsLog.init(contentsOf:)) ?? MetricsLog(Data()), size: size, modified: modified)
        digests.withLock { $0[id] = digest }
        return RunSummary(
            id: id, name: id == "." ? root.lastPathComponent : id,
            preset: config?["preset"]?.string, resolution: model?["resolution"]?.int,
            imageChannels: model?["imageChannels"]?.int, steps: config?["steps"]?.int,
            step: digest.step, imagesSeen: digest.imagesSeen, lossD: digest.lossD, lossG: digest.lossG,
            realLogit: digest.realLogit, fakeLogit: digest.fakeLogit, kid: digest.kid, fid: digest.fid,
            evalStep: digest.evalStep, classCount: model?["classCount"]?.int ?? 0,
            secondsSinceUpdate: modified.map { max(0, Date().timeIntervalSince($0)) })
    }

    /// The run's sample grids and attention pictures by step, oldest first.
    public func pictures(of id: String) -> RunPictures? {
        guard let folder = folder(of: id) else { return nil }
        let names =
            (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("samples").path))
            ?? []
        func steps(_ prefix: String) -> [Int] {
            names.compactMap { name in
                guard name.hasPrefix(prefix), name.hasSuffix(".png") else { return nil }
                return Int(name.dropFirst(prefix.count).dropLast(4))
            }.sorted()
        }
        return RunPictures(samples: steps("step-"), attention: steps("attention-step-"))
    }

    /// The run's checkpoint files (newest step first, then best.safetensors), with what each holds.
    public func checkpoints(of id: String) -> [CheckpointEntry]? {
        guard let folder = folder(of: id) else { return nil }
        let checkpoints = folder.appendingPathComponent("checkpoints")
        var names = RunDirectory.checkpointFiles(in: checkpoints).map(\.lastPathComponent)
        if FileManager.default.fileExists(atPath: checkpoints.appendingPathComponent("best.safetensors").path) {
            names.append("best.safetensors")
        }
        return names.compactMap { name in
            guard let file = self.file("checkpoints/" + name, of: folder),
                let header = try? SafeTensorsFile(contentsOf: file)
            else { return nil }
            return CheckpointEntry(
                file: file.lastPathComponent, step: Int(header.metadata["step"] ?? ""),
                hasEMA: header.names.contains { $0.hasPrefix("G_ema.") },
                hasDiscriminator: header.names.contains { $0.hasPrefix("D.") })
        }
    }
}

/// One line of the list of runs.
public struct RunSummary: Codable, Sendable, Equatable {
    public let id: String
    public let name: String
    public let preset: String?
    public let resolution: Int?
    public let imageChannels: Int?
    /// The steps the run was started for, and the last step it logged.
    public let steps: Int?
    public let step: Int?
    public let imagesSeen: Int?
    public let lossD: Double?
    public let lossG: Double?
    public let realLogit: Double?
    public let fakeLogit: Double?
    /// The last evaluation's KID and FID, and its step.
    public let kid: Double?
    public let fid: Double?
    public let evalStep: Int?
    public let classCount: Int
    /// Since metrics.jsonl last changed: a run that is training changes it every few seconds.
    public let secondsSinceUpdate: Double?
}

/// The steps that have a sample grid (samples/step-N.png) and an attention picture.
public struct RunPictures: Codable, Sendable, Equatable {
    public let samples: [Int]
    public let attention: [Int]
}

/// A checkpoint file of a run, as the generator playground offers it.
public struct CheckpointEntry: Codable, Sendable, Equatable {
    public let file: String
    public let step: Int?
    public let hasEMA: Bool
    public let hasDiscriminator: Bool
}

/// The last training row's numbers and the last evaluation of a log of `size` bytes.
struct LogDigest: Sendable {
    let size: Int
    let modified: Date?
    let step: Int?
    let imagesSeen: Int?
    let lossD: Double?
    let lossG: Double?
    let realLogit: Double?
    let fakeLogit: Double?
    let kid: Double?
    let fid: Double?
    let evalStep: Int?

    init(_ log: MetricsLog, size: Int, modified: Date?) {
        let last = log.rows.last { $0["kind"] == nil }
        let evaluation = log.rows.last { $0["kind"]?.string == "eval" }
        (self.size, self.modified) = (size, modified)
        (step, imagesSeen) = (last?["step"]?.int, last?["images_seen"]?.int)
        (lossD, lossG) = (last?["Loss/D"]?.double, last?["Loss/G"]?.double)
        (realLogit, fakeLogit) = (last?["D/real"]?.double, last?["D/fake"]?.double)
        (kid, fid, evalStep) = (evaluation?["kid"]?.double, evaluation?["fid"]?.double, evaluation?["step"]?.int)
    }
}

/// metrics.jsonl's complete lines as JSON objects (a half-written last line is left for later).
public struct MetricsLog {
    public private(set) var rows: [JSONValue] = []
    /// Bytes of complete lines read.
    public private(set) var length = 0

    public init(contentsOf file: URL) {
        self.init((try? Data(contentsOf: file)) ?? Data())
    }

    public init(_ data: Data) {
        guard let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return }
        length = end + 1 - data.startIndex
        for line in data[data.startIndex..<end].split(separator: UInt8(ascii: "\n")) {
            if let row = try? JSONValue(parsing: line), row.object != nil { rows.append(row) }
        }
    }
}
