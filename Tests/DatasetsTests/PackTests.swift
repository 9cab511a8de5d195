import Autodiff
import Datasets
import FileFormats
import Foundation
import Testing

@Suite("Checking and packing datasets")
struct PackTests {
    /// cats/ and dogs/ with good images of mixed formats and modes, plus every kind of bad file.
    func makeMessyFolder() throws -> URL {
        let folder = try TestImages.temporaryFolder("messy")
        let manager = FileManager.default
        for name in ["cats", "dogs"] {
            try manager.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        func write(_ data: Data, _ path: String) throws { try data.write(to: folder.appendingPathComponent(path)) }
        try write(try ImageCodec.encodeJPEG(TestImages.gradient(width: 40, height: 30, channels: 3)), "cats/a.jpg")
        try write(try ImageCodec.encodePNG(TestImages.noise(width: 20, height: 20, channels: 4)), "cats/b.png")
        try write(Netpbm.encode(TestImages.noise(width: 16, height: 24, channels: 1)), "cats/c.pgm")
        try write(try ImageCodec.encodePNG(TestImages.noise(width: 20, height: 20, channels: 1)), "dogs/d.png")
        try write(try ImageCodec.encodeJPEG(TestImages.gradient(width: 40, height: 30, channels: 3)), "dogs/e.jpeg")
        // Bad files, one of each kind, and a duplicate.
        try write(Data(), "dogs/empty.jpg")
        let jpeg = try ImageCodec.encodeJPEG(TestImages.gradient(width: 64, height: 64, channels: 3))
        try write(jpeg.prefix(jpeg.count - 200), "dogs/cut.jpg")
        try write(try ImageCodec.encodePNG(TestImages.noise(width: 8, height: 8, channels: 3)), "dogs/actually-png.jpg")
        try write(try TestImages.jpegClaiming(width: 20000, height: 20000), "cats/huge.jpg")
        try write(Data("not an image".utf8), "cats/notes.txt")
        try write(
            try ImageCodec.encodeJPEG(TestImages.gradient(width: 40, height: 30, channels: 3)), "dogs/copy-of-a.jpg")
        return folder
    }

    @Test func checkReportsEveryProblemByPath() throws {
        let folder = try makeMessyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try DatasetDoctor.check(source: folder.path)
        #expect(report.files == 10 && report.images == 6)
        #expect(report.ignored.map { ($0 as NSString).lastPathComponent } == ["notes.txt"])
        let kinds = Dictionary(
            report.bad.map { (($0.path as NSString).lastPathComponent, $0.kind) }, uniquingKeysWith: { a, _ in a })
        #expect(
            kinds == [
                "empty.jpg": .zeroByte, "cut.jpg": .truncated, "actually-png.jpg": .wrongExtension,
                "huge.jpg": .tooLarge,
            ])
        #expect(report.duplicates.count == 1 && report.duplicates[0].count == 3)  // a.jpg, e.jpeg, copy-of-a.jpg
        #expect(report.modes["RGBA"] == 1 && report.modes["gray"] == 2 && report.modes["RGB"] == 3)
        #expect(report.sizes["40x30"] == 3 && report.sizes["16x24"] == 1)
        #expect(report.labelNames == ["cats", "dogs"] && report.labelCounts == [3, 3])
    }

    @Test func packSkipsBadFilesListsThemAndKeepsLabels() throws {
        let folder = try makeMessyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let destination = folder.appendingPathComponent("out.safetensors")
        let summary = try DatasetPacker.pack(
            source: folder.path, destination: destination,
            options: PackOptions(resolution: 16, channels: 3, crop: .center))
        #expect(summary.packed == 6 && summary.skipped.count == 4)
        #expect(summary.converted == 3)  // RGBA and two grayscale images
        #expect(summary.nonSquare == 4)
        let list = try String(contentsOfFile: summary.skippedListPath!, encoding: .utf8)
        #expect(list.contains("cut.jpg\ttruncated") && list.contains("empty.jpg\tzero-byte"))
        let packed = try PackedDataset(contentsOf: destination)
        #expect(packed.count == 6 && packed.height == 16 && packed.width == 16 && packed.channels == 3)
        #expect(packed.labelNames == ["cats", "dogs"])
        #expect((0..<6).map { packed.label($0)! } == [0, 0, 0, 1, 1, 1])
        #expect(packed.sourceDigest.count == 64 && packed.metadata["crop"] == "center")
        // The PGM (16x24 gray) was centre-cropped to 16x16 and replicated to RGB.
        let pgm = try packed.image(2)
        #expect(pgm.pixels[0] == pgm.pixels[1] && pgm.pixels[1] == pgm.pixels[2])
        let source = TestImages.noise(width: 16, height: 24, channels: 1).cropped(
            left: 0, top: 4, width: 16, height: 16)
        let expected = Resampling.resize(source.converted(toChannels: 3), width: 16, height: 16)
        #expect(pgm == expected)
        // Nothing but the pack and its list is left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["cats", "dogs", "out.safetensors", "out.safetensors.skipped.txt"])
    }

    /// Issue 14, case 5: links to images and to class folders are followed (the source itself may be
    /// a link); broken links and loops are listed, not followed.
    @Test func symbolicLinksAreFollowedAndLoopsAndBrokenOnesListed() throws {
        let work = try TestImages.temporaryFolder("links")
        defer { try? FileManager.default.removeItem(at: work) }
        let manager = FileManager.default
        let data = work.appendingPathComponent("data")
        let elsewhere = work.appendingPathComponent("elsewhere")
        for folder in [data.appendingPathComponent("cats"), elsewhere.appendingPathComponent("dogs")] {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        let png = try ImageCodec.encodePNG(TestImages.noise(width: 16, height: 16, channels: 3))
        try png.write(to: data.appendingPathComponent("cats/a.png"))
        try png.write(to: elsewhere.appendingPathComponent("dogs/b.png"))
        try png.write(to: elsewhere.appendingPathComponent("c.png"))
        try manager.createSymbolicLink(
            at: data.appendingPathComponent("dogs"), withDestinationURL: elsewhere.appendingPathComponent("dogs"))
        try manager.createSymbolicLink(
            at: data.appendingPathComponent("cats/c.png"), withDestinationURL: elsewhere.appendingPathComponent("c.png")
        )
        try manager.createSymbolicLink(
            at: data.appendingPathComponent("cats/gone.png"), withDestinationURL: work.appendingPathComponent("nothing")
        )
        try manager.createSymbolicLink(at: data.appendingPathComponent("cats/loop"), withDestinationURL: data)
        let linkedRoot = work.appendingPathComponent("data-link")
        try manager.createSymbolicLink(at: linkedRoot, withDestinationURL: data)

        let source = try DatasetSource(path: linkedRoot.path)
        #expect(source.items.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["a.png", "c.png", "b.png"])
        #expect(source.labelNames == ["cats", "dogs"] && source.items.map(\.label) == [0, 0, 1])
        #expect(source.unfollowed.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["gone.png", "loop"])
        #expect(source.unfollowed.map(\.reason) == ["a broken link", "a link back into a folder above it (a loop)"])

        // The pack removes a partial file left by a packer that died, and lists what it did not follow.
        let destination = work.appendingPathComponent("out.safetensors")
        let stale = work.appendingPathComponent(".out.safetensors.999999.partial")
        try Data(repeating: 0, count: 16).write(to: stale)
        let summary = try DatasetPacker.pack(
            source: linkedRoot.path, destination: destination, options: PackOptions(resolution: 16, channels: 3))
        #expect(summary.packed == 3 && summary.unfollowed.count == 2)
        #expect(!manager.fileExists(atPath: stale.path))
    }

    @Test func failStopsAtTheFirstBadFileAndWritesNothing() throws {
        let folder = try makeMessyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let destination = folder.appendingPathComponent("out.safetensors")
        #expect(
            throws: DataError(
                .tooLarge, folder.appendingPathComponent("cats/huge.jpg").path,
                "JPEG: image of 20000x20000 pixels exceeds the limit of 100000000 pixels")
        ) {
            try DatasetPacker.pack(
                source: folder.path, destination: destination,
                options: PackOptions(resolution: 16, channels: 3, onBad: .fail))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["cats", "dogs"])
    }

    @Test func idxPacksWithPaddingAndLabels() throws {
        let folder = try TestImages.temporaryFolder("idxpack")
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = (0..<(5 * 28 * 28)).map { UInt8($0 % 251) }
        try Gzip.compress(IDX.encode(dimensions: [5, 28, 28], values: images)).write(
            to: folder.appendingPathComponent("x-images-idx3-ubyte.gz"))
        try IDX.encode(dimensions: [5], values: [3, 1, 4, 1, 5]).write(
            to: folder.appendingPathComponent("x-labels-idx1-ubyte"))
        let destination = folder.appendingPathComponent("x.safetensors")
        let summary = try DatasetPacker.pack(
            source: folder.appendingPathComponent("x-images-idx3-ubyte.gz").path, destination: destination,
            options: PackOptions(resolution: 32, channels: 1, padding: 2))
        #expect(summary.packed == 5 && summary.labelNames.count == 6)
        let packed = try PackedDataset(contentsOf: destination)
        #expect((0..<5).map { packed.label($0)! } == [3, 1, 4, 1, 5])
        let first = try packed.image(0)
        #expect(first.width == 32 && first.pixels[0] == 0)  // padding
        #expect(first[x: 2, y: 2, channel: 0] == images[0] && first[x: 29, y: 29, channel: 0] == images[28 * 28 - 1])
    }

    @Test func aTruncatedOrForeignPackIsRefusedClearly() throws {
        let folder = try TestImages.temporaryFolder("badpack")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = folder.appendingPathComponent("good.safetensors")
        let writer = try PackedDatasetWriter(destination: good, height: 4, width: 4, channels: 1)
        for index in 0..<3 {
            try writer.append(TestImages.noise(width: 4, height: 4, channels: 1, seed: UInt64(index)), label: index)
        }
        try writer.finish(metadata: [:], labelNames: ["a", "b", "c"])
        let data = try Data(contentsOf: good)
        let truncated = folder.appendingPathComponent("cut.safetensors")
        try data.prefix(data.count - 10).write(to: truncated)
        do {
            _ = try PackedDataset(contentsOf: truncated)
            Issue.record("a truncated pack was accepted")
        } catch let error as DataError {
            #expect(error.kind == .truncated && error.path == truncated.path && error.reason.contains("truncated"))
        }
        let foreign = folder.appendingPathComponent("weights.safetensors")
        try SafeTensorsFile.write([("w", Tensor.zeros([2]))], metadata: ["format": "pt"], to: foreign)
        #expect(throws: DataError(.unsupported, foreign.path, "not a sagan packed dataset (metadata format is \"pt\")"))
        {
            try PackedDataset(contentsOf: foreign)
        }
    }
}
