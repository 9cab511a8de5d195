import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation

/// A run's folder: run.json, metrics.jsonl, samples/, checkpoints/ and the TensorBoard event file.
public final class RunDirectory {
    public let url: URL
    public let events: EventWriter
    public var samples: URL { url.appendingPathComponent("samples") }
    public var checkpoints: URL { url.appendingPathComponent("checkpoints") }
    public var metrics: URL { url.appendingPathComponent("metrics.jsonl") }

    public init(_ url: URL) throws {
        self.url = url
        for folder in [url, url.appendingPathComponent("samples"), url.appendingPathComponent("checkpoints")] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        let metrics = url.appendingPathComponent("metrics.jsonl")
        try checkReplaceable(metrics)
        if PathKind(metrics.path) == .missing { FileManager.default.createFile(atPath: metrics.path, contents: nil) }
        events = try EventWriter(folder: url)
    }

    /// run.json: what produced this run. A resumed run (`resumedAt` its step) keeps the file's first
    /// command line, precision and start time and adds an entry to `resumes`: when, at which step,
    /// with which command line, in which precision and which settings changed.
    public func writeRunInfo(
        commandLine: [String], config: TrainConfig, datasetPath: String, datasetDigest: String,
        resumedAt step: Int? = nil, changes: [String: String] = [:], worldSize: Int = 1
    ) throws {
        let file = url.appendingPathComponent("run.json")
        let previous = step == nil ? nil : try? Data(contentsOf: file)
        let info = try Self.runInfo(
            previous: previous, commandLine: commandLine, config: config, datasetPath: datasetPath,
            datasetDigest: datasetDigest, precision: Engine.precision, worldSize: worldSize, resumedAt: step,
            changes: changes)
        try writeAtomically(info, to: file)
        try events.text(tag: "config", String(decoding: try JSONEncoder.sorted.encode(config), as: UTF8.self), step: 0)
        try events.text(tag: "command_line", commandLine.joined(separator: " "), step: 0)
    }

    /// The bytes of run.json, given what the file held before (`previous`, read back on resume; any
    /// bytes at all, since the file may have been damaged or edited).
    public static func runInfo(
        previous: Data?, commandLine: [String], config: TrainConfig, datasetPath: String, datasetDigest: String,
        precision: Precision, worldSize: Int = 1, resumedAt step: Int?, changes: [String: String], now: Date = Date()
    ) throws -> Data {
        let started = ISO8601DateFormatter().string(from: now)
        var info: [String: JSONValue] = [
            "command_line": JSONValue(commandLine), "config": try JSONValue(encoding: config),
            "seed": .number(String(config.seed)), "dataset": JSONValue(datasetPath),
            "dataset_digest": JSONValue(datasetDigest), "tool_version": JSONValue(ProjectInfo.version),
            "started": JSONValue(started), "precision": JSONValue(precision.rawValue),
            "world_size": JSONValue(worldSize),
        ]
        if let step {
            // A damaged or edited run.json loses its history, not this entry.
            let old = previous.flatMap { try? JSONValue(parsing: $0) }?.object ?? [:]
            info["command_line"] = old["command_line"]?.strings.map { JSONValue($0) } ?? info["command_line"]
            info["started"] = old["started"]?.string.map(JSONValue.string) ?? info["started"]
            info["precision"] = old["precision"]?.string.map(JSONValue.string) ?? info["precision"]
            info["world_size"] = old["world_size"]?.int.map { JSONValue($0) } ?? info["world_size"]
            let resume: JSONValue = [
                "step": JSONValue(step), "started": JSONValue(started), "command_line": JSONValue(commandLine),
                "changes": .object(changes.mapValues(JSONValue.string)), "precision": JSONValue(precision.rawValue),
                "world_size": JSONValue(worldSize),
            ]
            let history = (old["resumes"]?.array ?? []).filter { $0.object != nil }
            info["resumes"] = .array(history + [resume])
            if let best = old["best"], best.object != nil { info["best"] = best }
            if let setAside = old["set_aside"]?.array { info["set_aside"] = .array(setAside) }
        }
        return JSONValue.object(info).serialized(pretty: true)
    }

    /// Drops the trainer's rows of metrics.jsonl after `step` (and any half-written last line), so a
    /// run resumed from the checkpoint at `step` logs each step and each evaluation once: the states
    /// after `step` are computed again. Rows another command wrote (`sagan eval`) stay.
    public static func truncateMetrics(in folder: URL, after step: Int) throws {
        try MetricsFile.truncate(folder.appendingPathComponent("metrics.jsonl")) { ($0["step"]?.int ?? 0) <= step }
    }

    /// One line of metrics.jsonl and the same scalars in TensorBoard.
    public func log(step: Int, imagesSeen: Int, report: StepReport, secondsPerStep: Double) throws {
        var scalars: [(String, Float)] = [
            ("Loss/D", report.lossD), ("Loss/G", report.lossG), ("D/real", report.realLogit),
            ("D/fake", report.fakeLogit),
        ]
        scalars += report.gammas.map { ("Attn/\($0.name)/gamma", $0.value) }
        scalars.append(("Time/sec_per_step", Float(secondsPerStep)))
        var line: [String: JSONValue] = ["step": JSONValue(step), "images_seen": JSONValue(imagesSeen)]
        for (tag, value) in scalars {
            line[tag] = JSONValue(exactly: Double(value)) ?? JSONValue(String(describing: value))
        }
        try appendMetrics(.object(line), step: step)
        try events.scalars(scalars.map { (tag: $0.0, value: $0.1) }, step: step)
        try events.flush()
    }

    /// Appends one row to metrics.jsonl; a failure (a full disk) names the file and the step.
    private func appendMetrics(_ row: JSONValue, step: Int) throws {
        do {
            try MetricsFile.append(row, to: metrics)
        } catch let error as FileWriteError {
            throw FileWriteError(file: error.file, reason: "the row of step \(step): \(error.reason)")
        }
    }

    /// An evaluation of the checkpoint at `step`: `record` (the values and their protocol) as one
    /// line of metrics.jsonl with "kind": "eval", and `scalars` in TensorBoard at that step.
    /// `source` names the command when it is not the trainer (`sagan eval`): its rows outlive a
    /// resume's truncation, since the trainer will not write them again.
    public func logEvaluation(step: Int, record: EvaluationRecord, source: String? = nil) throws {
        guard var line = try JSONValue(encoding: record).object else { return }
        line["kind"] = "eval"
        line["step"] = JSONValue(step)
        if let source { line[MetricsFile.sourceKey] = JSONValue(source) }
        try appendMetrics(.object(line), step: step)
        try events.scalars(record.scalars, step: step)
        try events.flush()
    }

    /// The run folder holding `checkpoint` (RUN/checkpoints/FILE beside RUN/metrics.jsonl), if any.
    public static func containing(checkpoint: URL) -> URL? {
        let folder = checkpoint.standardizedFileURL.deletingLastPathComponent()
        let run = folder.deletingLastPathComponent()
        let metrics = run.appendingPathComponent("metrics.jsonl")
        guard folder.lastPathComponent == "checkpoints", FileManager.default.fileExists(atPath: metrics.path) else {
            return nil
        }
        return run
    }

    /// Writes the sample grid as samples/step-NNNNNN.png and to TensorBoard; returns the file.
    @discardableResult
    public func writeSamples(_ images: Tensor, step: Int) throws -> URL {
        let grid = SampleGrid.image(images)
        let png = try ImageCodec.encodePNG(grid)
        let file = samples.appendingPathComponent(String(format: "step-%06d.png", step))
        try writeAtomically(png, to: file)
        try events.image(
            tag: "samples", png: png, width: grid.width, height: grid.height, colorspace: grid.channels == 1 ? 1 : 3,
            step: step)
        try events.flush()
        return file
    }

    /// samples/attention-step-NNNNNN.png and the same picture in TensorBoard.
    @discardableResult
    public func writeAttention(_ picture: PixelImage, step: Int) throws -> URL {
        let png = try ImageCodec.encodePNG(picture)
        let file = samples.appendingPathComponent(String(format: "attention-step-%06d.png", step))
        try writeAtomically(png, to: file)
        try events.image(
            tag: "attention", png: png, width: picture.width, height: picture.height, colorspace: 3, step: step)
        try events.flush()
        return file
    }

    /// checkpoints/step-NNNNNN.safetensors, written atomically; keeps the newest `keep`.
    @discardableResult
    public func saveCheckpoint(_ trainer: Trainer, datasetDigest: String, commandLine: String, keep: Int) throws -> URL
    {
        let file = checkpoints.appendingPathComponent(String(format: "step-%06d.safetensors", trainer.step))
        try TrainingCheckpoint.save(trainer, datasetDigest: datasetDigest, commandLine: commandLine, to: file)
        for old in checkpointFiles().dropFirst(keep) { try? FileManager.default.removeItem(at: old) }
        return file
    }

    /// checkpoints/best.safetensors: the state at the best evaluation so far, written atomically,
    /// never pruned by `keep` nor taken by `--resume auto`; run.json records it under "best".
    @discardableResult
    public func saveBest(
        _ trainer: Trainer, _ best: BestEvaluation, datasetDigest: String, commandLine: String
    ) throws -> URL {
        let file = checkpoints.appendingPathComponent("best.safetensors")
        let encoded = try JSONEncoder.sorted.encode(best)
        try TrainingCheckpoint.save(
            trainer, datasetDigest: datasetDigest, commandLine: commandLine,
            extraMetadata: [BestEvaluation.metadataKey: String(decoding: encoded, as: UTF8.self)], to: file)
        let runFile = url.appendingPathComponent("run.json")
        var info = (try? JSONValue(parsing: Data(contentsOf: runFile)))?.object ?? [:]
        var entry = try JSONValue(parsing: encoded).object ?? [:]
        entry["file"] = "checkpoints/best.safetensors"
        info["best"] = .object(entry)
        try writeAtomically(JSONValue.object(info).serialized(pretty: true), to: runFile)
        return file
    }

    /// The best evaluation recorded in `folder`/checkpoints/best.safetensors, if that file is readable.
    public static func bestEvaluation(in folder: URL) -> BestEvaluation? {
        if case .valid(let best) = bestFile(in: folder) { return best }
        return nil
    }

    /// What checkpoints/best.safetensors holds: nothing, a readable best, or a damaged file (which
    /// must be reported and kept, not silently replaced).
    public enum BestFile: Equatable {
        case none
        case valid(BestEvaluation)
        case damaged(String)
    }

    public static func bestFile(in folder: URL) -> BestFile {
        let file = folder.appendingPathComponent("checkpoints/best.safetensors")
        guard PathKind(file.path) != .missing else { return .none }
        do {
            let header = try SafeTensorsFile(contentsOf: file)
            guard let encoded = header.metadata[BestEvaluation.metadataKey] else {
                return .damaged("its metadata has no \(BestEvaluation.metadataKey)")
            }
            return .valid(try JSONDecoder().decode(BestEvaluation.self, from: Data(encoded.utf8)))
        } catch {
            return .damaged("\(error)")
        }
    }

    /// Moves checkpoints/best.safetensors aside to best-`tag`-step-NNNNNN.safetensors (a free name),
    /// and moves run.json's "best" entry to "set_aside" with the new file and `reason`. Returns the
    /// new file.
    public func setAsideBest(tag: String, step: Int?, reason: String) throws -> URL {
        let file = checkpoints.appendingPathComponent("best.safetensors")
        let stem = "best-\(tag)" + (step.map { String(format: "-step-%06d", $0) } ?? "")
        var target = checkpoints.appendingPathComponent(stem + ".safetensors")
        var number = 2
        while PathKind(target.path) != .missing {
            target = checkpoints.appendingPathComponent("\(stem)-\(number).safetensors")
            number += 1
        }
        guard rename(file.path, target.path) == 0 else {
            throw FileWriteError(file: file.path, reason: "cannot move it to \(target.lastPathComponent)")
        }
        let runFile = url.appendingPathComponent("run.json")
        var info = (try? JSONValue(parsing: Data(contentsOf: runFile)))?.object ?? [:]
        var entry = info.removeValue(forKey: "best")?.object ?? [:]
        entry["file"] = JSONValue("checkpoints/" + target.lastPathComponent)
        entry["reason"] = JSONValue(reason)
        info["set_aside"] = .array((info["set_aside"]?.array ?? []) + [.object(entry)])
        try writeAtomically(JSONValue.object(info).serialized(pretty: true), to: runFile)
        return target
    }

    /// The checkpoint files, newest step first.
    public func checkpointFiles() -> [URL] { Self.checkpointFiles(in: checkpoints) }

    public static func checkpointFiles(in folder: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted(by: >).map {
            folder.appendingPathComponent($0)
        }
    }
}

/// Sample images as one picture: a square grid with 2-pixel gaps, pixels mapped from [−1, 1].
public enum SampleGrid {
    /// The columns of a grid for `count` images: "COLUMNSxROWS" with room for all of them, or (nil)
    /// as square as the count allows.
    public static func columns(_ layout: String?, count: Int) throws -> Int {
        guard let layout else { return Int(Double(count).squareRoot().rounded(.up)) }
        let parts = layout.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0, parts[0] * parts[1] >= count else {
            throw ConfigurationError.invalidArgument(
                .grid, "\(Setting.grid) \(layout): give columns x rows with room for \(count) images, e.g. 8x8")
        }
        guard parts[0] <= count, (parts[1] - 1) * parts[0] < count else {
            throw ConfigurationError.invalidArgument(
                .grid, "\(Setting.grid) \(layout): \(count) images fill at most \(count) columns and leave no row empty"
            )
        }
        return parts[0]
    }

    /// `columns` defaults to the smallest square that holds the images; `gap` pixels of white between them.
    public static func image(_ images: Tensor, columns requested: Int? = nil, gap: Int = 2) -> PixelImage {
        let (count, channels, height, width) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let columns = requested ?? Int(Double(count).squareRoot().rounded(.up))
        let rows = (count + columns - 1) / columns
        let gridWidth = columns * (width + gap) + gap
        let gridHeight = rows * (height + gap) + gap
        var pixels = [UInt8](repeating: 255, count: gridWidth * gridHeight * channels)
        let values = images.scalars
        for index in 0..<count {
            let (row, column) = (index / columns, index % columns)
            for c in 0..<channels {
                for y in 0..<height {
                    for x in 0..<width {
                        let value = values[((index * channels + c) * height + y) * width + x]
                        let byte = UInt8(max(0, min(255, ((value + 1) * 127.5).rounded())))
                        let gx = gap + column * (width + gap) + x
                        let gy = gap + row * (height + gap) + y
                        pixels[(gy * gridWidth + gx) * channels + c] = byte
                    }
                }
            }
        }
        return PixelImage(width: gridWidth, height: gridHeight, channels: channels, pixels: pixels)
    }
}
