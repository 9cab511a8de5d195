import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

/// Every command recognises its inputs by their content: each kind of input under a misleading name,
/// through each command that reads a path, either works or is refused with "NAME is KIND; FLAG needs …".
@Suite("Inputs recognised by content", .serialized, .tags(.slow), .skippedInFastRuns)
struct InputRecognitionTests {
    /// The inputs, each under a name that suggests another kind.
    struct Inputs {
        let folder: URL
        var packBin: String { path("pack.bin") }
        var packIDX: String { path("pack.idx") }
        var idxSafetensors: String { path("images.safetensors") }
        var idxGzipPNG: String { path("images.png") }
        var checkpointPNG: String { path("checkpoint.png") }
        var exportBin: String { path("generator.bin") }
        var pngJPG: String { path("picture.jpg") }
        var imageFolder: String { path("images-folder.safetensors") }
        var latentCodes: String { path("codes.idx") }

        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("inputs-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let pack = try makeBlobPack(folder, count: 16)
            try FileManager.default.copyItem(
                atPath: pack.url.path, toPath: folder.appendingPathComponent("pack.bin").path)
            try FileManager.default.moveItem(
                atPath: pack.url.path, toPath: folder.appendingPathComponent("pack.idx").path)
            var pixels: [UInt8] = []
            let images = try (0..<16).map { try pack.image($0) }
            for image in images { pixels += image.pixels }
            let idx = IDX.encode(dimensions: [16, 32, 32], values: pixels)
            try idx.write(to: URL(fileURLWithPath: path("images.safetensors")))
            try Gzip.compress(idx).write(to: URL(fileURLWithPath: path("images.png")))
            try FileManager.default.createDirectory(
                atPath: path("images-folder.safetensors"), withIntermediateDirectories: true)
            for (index, image) in images.prefix(8).enumerated() {
                try ImageCodec.encodePNG(image).write(
                    to: URL(fileURLWithPath: path("images-folder.safetensors/\(index).png")))
            }
            try ImageCodec.encodePNG(images[0]).write(to: URL(fileURLWithPath: path("picture.jpg")))

            var config = try smallTrainConfig(ema: false)
            config.batchSize = 4
            let trainer = Trainer(config: config)
            let loader = try BatchLoader(
                dataset: try PackedDataset(contentsOf: URL(fileURLWithPath: path("pack.idx"))),
                options: .init(batchSize: 4))
            _ = try trainer.trainStep { try loader.next() }
            try TrainingCheckpoint.save(
                trainer, datasetDigest: "test", commandLine: "test", to: URL(fileURLWithPath: path("checkpoint.png")))
            let loaded = try LoadedGenerator(contentsOf: URL(fileURLWithPath: path("checkpoint.png")), ema: false)
            try GeneratorExport.write(loaded, ema: false, to: URL(fileURLWithPath: path("generator.bin")))
            try SafeTensorsFile.write(
                [("z", Tensor(shape: [2, 4], scalars: Array(repeating: 0.5, count: 8)))],
                to: URL(fileURLWithPath: path("codes.idx")))
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    @Test func kindsAreReadFromTheContent() throws {
        let inputs = try Inputs()
        defer { inputs.remove() }
        let expected: [(String, InputKind)] = [
            (inputs.packBin, .pack), (inputs.packIDX, .pack), (inputs.idxSafetensors, .idx(compressed: false)),
            (inputs.idxGzipPNG, .idx(compressed: true)), (inputs.checkpointPNG, .trainingCheckpoint),
            (inputs.exportBin, .export), (inputs.pngJPG, .image(.png)), (inputs.imageFolder, .folder),
            (inputs.latentCodes, .safetensors), (inputs.path("nothing"), .missing),
        ]
        for (path, kind) in expected { #expect(InputKind.of(path) == kind, "\(path)") }
        let noise = inputs.path("noise.safetensors")
        try Data((0..<300).map { UInt8($0 % 7) }).write(to: URL(fileURLWithPath: noise))
        #expect(InputKind.of(noise) == .other)
    }

    /// A safetensors file begins with its header's length as a little-endian u64, which can spell
    /// a short magic number: 0x3550 bytes of header begin "P5" (a PGM), 0x03080000 begin like an IDX
    /// array. Each such length, padded into a checkpoint's or an export's header (JSON allows the
    /// trailing spaces), is still recognised by its structure, and still loads.
    @Test func headerLengthsThatSpellMagicNumbersAreStillSafetensors() throws {
        let inputs = try Inputs()
        defer { inputs.remove() }
        let magics: [(String, [UInt8])] = [
            ("P1", [0x50, 0x31]), ("P2", [0x50, 0x32]), ("P3", [0x50, 0x33]), ("P4", [0x50, 0x34]),
            ("P5", [0x50, 0x35]), ("P6", [0x50, 0x36]), ("IDX labels", [0, 0, 0x08, 0x01]),
            ("IDX images", [0, 0, 0x08, 0x03]), ("JPEG", [0xFF, 0xD8, 0xFF]), ("gzip", [0x1F, 0x8B, 0x08]),
        ]
        for (name, magic) in magics {
            let length = magic.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            // The smallest of our files whose own header fits in `length` bytes.
            let candidates: [(String, InputKind)] = [
                (inputs.checkpointPNG, .trainingCheckpoint), (inputs.exportBin, .export),
                (inputs.latentCodes, .safetensors),
            ]
            var written = false
            for (source, kind) in candidates {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
                let header = bytes[8..<8 + bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.1) << (8 * $1.0) }]
                let json = header.prefix { _ in true }.reversed().drop { $0 == UInt8(ascii: " ") }.reversed()
                guard json.count <= length else { continue }
                var padded = Data(withUnsafeBytes(of: UInt64(length).littleEndian) { Array($0) })
                padded += Array(json) + [UInt8](repeating: UInt8(ascii: " "), count: length - json.count)
                padded += bytes[(8 + header.count)...]
                #expect(Array(padded.prefix(magic.count)) == magic)
                let file = inputs.path("magic-\(name.replacingOccurrences(of: " ", with: "-")).pgm")
                try padded.write(to: URL(fileURLWithPath: file))
                #expect(InputKind.of(file) == kind, "\(name): \(InputKind.of(file))")
                let reread = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: file))
                #expect(
                    reread.names.sorted()
                        == (try SafeTensorsFile(contentsOf: URL(fileURLWithPath: source))).names.sorted())
                if kind == .trainingCheckpoint { _ = try TrainingCheckpoint.load(URL(fileURLWithPath: file)) }
                try FileManager.default.removeItem(atPath: file)
                written = true
                break
            }
            #expect(written, "\(name): no file's header fits in \(length) bytes")
        }
    }

    /// What a command did with one input: worked (exit 0), or refused it naming its kind and the flag.
    enum Expected {
        case works
        case refused(_ kind: String, _ flag: String)
    }

    func check(_ arguments: [String], _ input: String, _ expected: Expected) throws {
        let outcome = try SaganProcess.sagan(arguments)
        let name = (input as NSString).lastPathComponent
        switch expected {
        case .works:
            #expect(outcome.status == 0, "\(arguments.prefix(2)) \(name): \(outcome.output.suffix(300))")
        case .refused(let kind, let flag):
            #expect(outcome.status == 64, "\(arguments.prefix(2)) \(name): exit \(outcome.status)")
            #expect(
                outcome.output.contains("\(input) is \(kind); \(flag) needs"),
                "\(arguments.prefix(2)) \(name): \(outcome.output.suffix(300))")
        }
    }

    @Test func everyCommandTakesWhatItNeedsAndNamesWhatItGot() throws {
        let inputs = try Inputs()
        defer { inputs.remove() }
        let work = inputs.folder
        let images: [(String, Expected, Expected)] = [  // input; as a set of images; as --data (a pack)
            (inputs.packBin, .works, .works), (inputs.packIDX, .works, .works),
            (inputs.idxSafetensors, .works, .refused("an IDX file", "--data")),
            (inputs.imageFolder, .works, .refused("a folder", "--data")),
            (
                inputs.checkpointPNG, .refused("a training checkpoint", "--real"),
                .refused("a training checkpoint", "--data")
            ),
            (inputs.pngJPG, .refused("a PNG image", "--real"), .refused("a PNG image", "--data")),
        ]
        for (index, (input, asSet, asData)) in images.enumerated() {
            try check(
                ["eval", "--real", input, "--fake", inputs.packBin, "--metrics", "swd", "--num", "8"], input, asSet)
            if case .refused(let kind, _) = asSet {
                try check(
                    ["eval", "--real", inputs.packBin, "--fake", input, "--metrics", "swd", "--num", "8"], input,
                    .refused(kind, "--fake"))
            }
            try check(
                [
                    "train", "--data", input, "--steps", "1", "--batch", "4", "--sample-every", "1",
                    "--run-dir", work.appendingPathComponent("run\(index)").path,
                ], input, asData)
        }
        let sources: [(String, Expected)] = [
            (inputs.idxSafetensors, .works), (inputs.idxGzipPNG, .works), (inputs.imageFolder, .works),
            (inputs.packBin, .refused("a packed dataset", "--source")),
            (inputs.checkpointPNG, .refused("a training checkpoint", "--source")),
            (inputs.pngJPG, .refused("a PNG image", "--source")),
        ]
        for (input, expected) in sources { try check(["dataset", "check", "--source", input], input, expected) }

        let otherSafetensors = "a safetensors file that is not a sagan pack, checkpoint or export"
        let generators: [(String, Expected, Expected)] = [  // input; as G; as G and D (inspect model)
            (inputs.checkpointPNG, .works, .works),
            (inputs.exportBin, .works, .refused("an exported generator", "--checkpoint")),
            (
                inputs.packBin, .refused("a packed dataset", "--checkpoint"),
                .refused("a packed dataset", "--checkpoint")
            ),
            (inputs.idxSafetensors, .refused("an IDX file", "--checkpoint"), .refused("an IDX file", "--checkpoint")),
            (inputs.pngJPG, .refused("a PNG image", "--checkpoint"), .refused("a PNG image", "--checkpoint")),
            (
                inputs.latentCodes, .refused(otherSafetensors, "--checkpoint"),
                .refused(otherSafetensors, "--checkpoint")
            ),
        ]
        for (input, asGenerator, asPair) in generators {
            try check(
                [
                    "generate", "--checkpoint", input, "--seeds", "0-3", "--out",
                    work.appendingPathComponent("g.png").path,
                ],
                input, asGenerator)
            try check(
                ["export", "--checkpoint", input, "--out", work.appendingPathComponent("e.safetensors").path], input,
                asGenerator)
            try check(
                ["eval", "--real", inputs.packBin, "--checkpoint", input, "--metrics", "swd", "--num", "8"], input,
                asGenerator)
            try check(["inspect", "model", "--checkpoint", input], input, asPair)
        }
        let pictures: [(String, Expected)] = [
            (inputs.pngJPG, .works), (inputs.checkpointPNG, .refused("a training checkpoint", "--image")),
            (inputs.packBin, .refused("a packed dataset", "--image")),
            (inputs.imageFolder, .refused("a folder", "--image")),
        ]
        for (input, expected) in pictures {
            try check(
                [
                    "inspect", "attention", "--checkpoint", inputs.checkpointPNG, "--image", input, "--out",
                    work.appendingPathComponent("a.png").path,
                ], input, expected)
        }
        try check(
            [
                "inspect", "attention", "--checkpoint", inputs.pngJPG, "--out",
                work.appendingPathComponent("a.png").path,
            ],
            inputs.pngJPG, .refused("a PNG image", "--checkpoint"))
    }
}
