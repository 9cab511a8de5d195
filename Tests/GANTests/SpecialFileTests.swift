import Datasets
import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// FIFOs, devices and folders where files are expected (issue 27): an input is refused before it
/// is opened (a FIFO would make the command wait for a writer for ever, /dev/zero would never end),
/// and an output is left as it is (as root, `--out /dev/null` would have replaced /dev/null).
@Suite("Special files", .serialized, .tags(.slow), .skippedInFastRuns)
struct SpecialFileTests {
    typealias Inputs = InputRecognitionTests.Inputs

    func refused(_ arguments: [String], _ expected: String) throws {
        let outcome = try SaganProcess.sagan(arguments, timeLimit: 60)
        #expect(
            outcome.status == 64 && outcome.output.contains(expected),
            "\(arguments.prefix(2).joined(separator: " ")): exit \(outcome.status): \(outcome.output.suffix(300))")
    }

    @Test func specialInputsAreRefusedUnopened() throws {
        let inputs = try Inputs()
        defer { inputs.remove() }
        let fifo = inputs.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let (pack, checkpoint) = (inputs.packBin, inputs.checkpointPNG)
        let small = ["--batch", "4", "--steps", "1"]
        let cases: [[String]] = [
            ["generate", "--checkpoint", fifo, "--seeds", "0-1", "--out", inputs.path("o.png")],
            ["train", "--data", fifo, "--run-dir", inputs.path("r1")] + small,
            ["train", "--data", pack, "--config", fifo, "--run-dir", inputs.path("r2")] + small,
            ["train", "--data", pack, "--resume", fifo, "--run-dir", inputs.path("r3")] + small,
            ["train", "--data", pack, "--eval-every", "1", "--eval-real", fifo, "--run-dir", inputs.path("r4")]
                + small,
            ["eval", "--real", fifo, "--fake", pack, "--num", "10"],
            ["eval", "--real", pack, "--fake", fifo, "--num", "10"],
            ["eval", "--real", pack, "--checkpoint", fifo, "--num", "10"],
            ["eval", "--real", pack, "--fake", pack, "--num", "10", "--weights", fifo],
            ["inspect", "--checkpoint", fifo],
            ["inspect", "attention", "--checkpoint", checkpoint, "--image", fifo, "--out", inputs.path("a.png")],
            ["export", "--checkpoint", fifo, "--out", inputs.path("e.safetensors")],
            ["dataset", "check", "--source", fifo],
            ["dataset", "pack", "--source", fifo, "--dest", inputs.path("p.safetensors"), "--resolution", "32"],
        ]
        for arguments in cases { try refused(arguments, "a FIFO, not a file") }
        try refused(
            ["eval", "--real", pack, "--fake", pack, "--num", "10", "--weights", "/dev/zero"], "a character device")
        try refused(
            ["eval", "--real", pack, "--fake", pack, "--num", "10", "--weights", inputs.folder.path], "a folder")
        #expect(PathKind(fifo) == .special("a FIFO"))
    }

    @Test func specialOutputsAreLeftAsTheyAre() throws {
        let inputs = try Inputs()
        defer { inputs.remove() }
        var targets = [inputs.path("fifo")]
        #expect(mkfifo(targets[0], 0o600) == 0)
        // A character device like /dev/null (major 1, minor 3), where the machine lets us make one.
        if mknod(inputs.path("null"), mode_t(S_IFCHR) | 0o666, dev_t(0x103)) == 0 {
            targets.append(inputs.path("null"))
        }
        let checkpoint = inputs.checkpointPNG
        for target in targets {
            let kind = PathKind(target)
            let cases: [[String]] = [
                ["generate", "--checkpoint", checkpoint, "--seeds", "0-3", "--out", target],
                [
                    "generate", "--checkpoint", checkpoint, "--seeds", "0-3", "--out", inputs.path("g.png"), "--save-z",
                    target,
                ],
                ["export", "--checkpoint", checkpoint, "--out", target],
                ["inspect", "attention", "--checkpoint", checkpoint, "--out", target],
                ["dataset", "pack", "--source", inputs.idxSafetensors, "--dest", target, "--resolution", "32"],
            ]
            for arguments in cases {
                try refused(arguments, "not a file")
                #expect(PathKind(target) == kind, "\(arguments.prefix(2)) replaced \(target)")
            }
        }
        // A command never writes over its own input.
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        try refused(["export", "--checkpoint", checkpoint, "--out", checkpoint], "also an input")
        try refused(["generate", "--checkpoint", checkpoint, "--seeds", "0-1", "--out", checkpoint], "also an input")
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == before)
        try refused(
            ["generate", "--checkpoint", checkpoint, "--seeds", "0-1", "--outdir", inputs.packBin], "is a file")
    }

    /// `dataset check` lists a FIFO among the images (named like one) and packing leaves it out.
    @Test func specialFilesInAnImageFolderAreListed() throws {
        let inputs = try Inputs()
        defer { inputs.remove() }
        let folder = inputs.imageFolder
        #expect(mkfifo(folder + "/waiting.png", 0o600) == 0)
        let check = try SaganProcess.sagan(["dataset", "check", "--source", folder], timeLimit: 60)
        #expect(check.status == 0 && check.output.contains("waiting.png"), "\(check.output)")
        #expect(check.output.contains("a FIFO, not a file"), "\(check.output)")
        let pack = try SaganProcess.sagan(
            ["dataset", "pack", "--source", folder, "--dest", inputs.path("folder.safetensors"), "--resolution", "32"],
            timeLimit: 60)
        #expect(pack.status == 0 && pack.output.contains("8 images"), "\(pack.output)")
    }
}
