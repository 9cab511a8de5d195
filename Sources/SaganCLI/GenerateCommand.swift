import ArgumentParser
import Autodiff
import Datasets
import FileFormats
import Foundation
import GAN

/// A data error as the message for `flag`: messages that name the flag stand alone.
func flagged(_ flag: String, _ error: DataError) -> ValidationError {
    ValidationError(error.kind == .wrongKind ? error.description : "\(flag): \(error.description)")
}

/// Parses "x,y".
struct QueryPoint: ExpressibleByArgument {
    let x: Int
    let y: Int
    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let x = parts[0], let y = parts[1] else { return nil }
        (self.x, self.y) = (x, y)
    }
}

/// `sagan generate`: pictures from a trained generator; a seed always gives the same image.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write images from a checkpoint or export: a grid, one file per seed, or an interpolation.")

    @OptionGroup var model: GeneratorOptions
    @Option(help: "Seeds: 0-63, 5, or 1,5,9.") var seeds = "0-63"
    @Option(help: "Grid columns x rows (default: as square as the seed count allows).") var grid: String?
    @Option(help: "The grid (or interpolation strip) PNG to write.") var out: String?
    @Option(help: "A folder for one PNG per seed instead of a grid.") var outdir: String?
    @Option(parsing: .upToNextOption, help: "Two seeds A B: a strip interpolating z from A to B (spherical).")
    var interpolate: [Int] = []
    @Option(help: "Images in the interpolation strip.") var steps = 10
    @Option(help: "Redraw z components beyond ±T (the truncation trick).") var truncation: Float?
    @Option(name: .customLong("class"), help: "The class to draw, for class-conditional models.") var classIndex: Int?
    @Option(help: "Also write the latent codes used, as a safetensors file with one tensor \"z\" (N, latent size).")
    var saveZ: String?
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        guard (out == nil) != (outdir == nil) else {
            throw ValidationError("give exactly one of --out FILE.png and --outdir DIR")
        }
        if !interpolate.isEmpty {
            guard interpolate.count == 2 else { throw ValidationError("--interpolate takes two seeds, A B") }
            guard outdir == nil else { throw ValidationError("--interpolate writes one strip: use --out") }
            guard steps >= 2, steps <= 1024 else { throw ValidationError("--steps must be 2 to 1,024, got \(steps)") }
        }
        if let truncation, !(truncation > 0) {
            throw ValidationError("--truncation must be positive, got \(truncation)")
        }
    }

    func run() throws {
        try engine.run { try generate() }
    }

    func generate() throws {
        let inputs = [URL(fileURLWithPath: model.checkpoint)]
        for output in [out, saveZ].compactMap({ $0 }) {
            try checkDistinct(output: URL(fileURLWithPath: output), from: inputs)
        }
        if let outdir, case let kind = PathKind(outdir), kind != .folder && kind != .missing {
            throw ValidationError(
                "--outdir \(outdir) is \(kind == .regularFile ? "a file" : kind.notAFile!): give a folder")
        }
        let loaded = try model.load()
        let config = loaded.config
        try loaded.checkClass(classIndex)
        let codes: [[Float]]
        if !interpolate.isEmpty {
            let a = LatentCodes.z(seed: interpolate[0], size: config.latentSize, truncation: truncation)
            let b = LatentCodes.z(seed: interpolate[1], size: config.latentSize, truncation: truncation)
            codes = LatentCodes.interpolation(a, b, count: steps)
        } else {
            let seedList = try LatentCodes.parseSeeds(seeds)
            try LatentCodes.checkCount(seedList.count, of: config, setting: .seeds)
            codes = seedList.map { LatentCodes.z(seed: $0, size: config.latentSize, truncation: truncation) }
            try saveCodes(codes, config.latentSize)
            if let outdir {
                try FileManager.default.createDirectory(atPath: outdir, withIntermediateDirectories: true)
                for (seed, picture) in zip(seedList, loaded.pictures(codes, classIndex: classIndex)) {
                    let file = URL(fileURLWithPath: outdir).appendingPathComponent(String(format: "seed%06d.png", seed))
                    try writeAtomically(try ImageCodec.encodePNG(picture), to: file)
                }
                print("wrote \(seedList.count) images to \(outdir)")
                return
            }
        }
        if !interpolate.isEmpty { try saveCodes(codes, config.latentSize) }
        let columns = interpolate.isEmpty ? try SampleGrid.columns(grid, count: codes.count) : codes.count
        let picture = loaded.grid(codes, columns: columns, classIndex: classIndex)
        try writeAtomically(try ImageCodec.encodePNG(picture), to: URL(fileURLWithPath: out!))
        print("wrote \(codes.count) images (\(picture.width)x\(picture.height)) to \(out!)")
    }

    func saveCodes(_ codes: [[Float]], _ size: Int) throws {
        guard let saveZ else { return }
        try SafeTensorsFile.write(
            [("z", Tensor(shape: [codes.count, size], scalars: codes.flatMap { $0 }))], to: URL(fileURLWithPath: saveZ))
    }
}
