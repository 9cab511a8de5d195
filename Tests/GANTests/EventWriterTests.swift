import Autodiff
import Datasets
import Foundation
import GAN
import TestSupport
import Testing

@Suite("TensorBoard event files", .tags(.slow), .skippedInFastRuns)
struct EventWriterTests {
    /// docs/formats.md §1.7: the version event and a scalar event, byte for byte.
    @Test func recordsMatchTheReferenceBytes() throws {
        let folder = try FileManager.default.temporaryDirectory.appendingPathComponent("events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var times = [1_700_000_000.0, 1_700_000_001.5]
        let writer = try EventWriter(folder: folder) { times.removeFirst() }
        try writer.scalars([(tag: "loss/D", value: 0.5)], step: 10)
        try writer.flush()
        #expect(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))
        let bytes = [UInt8](try Data(contentsOf: writer.url))
        let expected: [UInt8] = [
            0x18, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0x7f, 0x4b, 0x22,
            0x09, 0x00, 0x00, 0x00, 0x40, 0xfc, 0x54, 0xd9, 0x41, 0x1a, 0x0d, 0x62, 0x72, 0x61, 0x69, 0x6e, 0x2e, 0x45,
            0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32,
            0xec, 0xed, 0x8f, 0x9d,
            0x1c, 0, 0, 0, 0, 0, 0, 0, 0xc8, 0xc1, 0x95, 0x1d,
            0x09, 0x00, 0x00, 0x60, 0x40, 0xfc, 0x54, 0xd9, 0x41, 0x10, 0x0a, 0x2a, 0x0f, 0x0a, 0x0d, 0x0a, 0x06, 0x6c,
            0x6f, 0x73, 0x73, 0x2f, 0x44,
            0x15, 0x00, 0x00, 0x00, 0x3f,
            0x54, 0x65, 0xaf, 0x03,
        ]
        #expect(bytes == expected)
    }

    /// The `tensorboard` package's own reader (pip install tensorboard; make test does) reads our
    /// scalars, image and text back.
    @Test func tensorboardReadsScalarsImagesAndText() throws {
        let folder = try FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = try EventWriter(folder: folder)
        try writer.text(tag: "config", "{\"batchSize\":64}", step: 0)
        try writer.scalars([(tag: "Loss/D", value: 1.25), (tag: "Loss/G", value: -0.5)], step: 3)
        try writer.scalars([(tag: "Loss/D", value: 0.75), (tag: "Loss/G", value: 0.25)], step: 7)
        let grid = PixelImage(
            width: 3, height: 2, channels: 3,
            pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90])
        try writer.image(
            tag: "samples", png: try ImageCodec.encodePNG(grid), width: 3, height: 2, colorspace: 3, step: 7)
        try writer.flush()
        let script = """
            import sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1], size_guidance={"images": 0, "scalars": 0, "tensors": 0})
            acc.Reload()
            for tag in sorted(acc.Tags()["scalars"]):
                print("scalar", tag, " ".join(f"{e.step}:{e.value}" for e in acc.Scalars(tag)))
            for event in acc.Images("samples"):
                print("image", event.step, event.width, event.height, len(event.encoded_image_string))
            for tag in acc.Tags()["tensors"]:
                print("text", tag, acc.Tensors(tag)[0].tensor_proto.string_val[0].decode())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, folder.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            Issue.record("the tensorboard reader failed (pip install tensorboard; make test does): \(output)")
            return
        }
        #expect(output.contains("scalar Loss/D 3:1.25 7:0.75"), "\(output)")
        #expect(output.contains("scalar Loss/G 3:-0.5 7:0.25"), "\(output)")
        #expect(output.contains("image 7 3 2 "), "\(output)")
        #expect(output.contains("text config/text_summary {\"batchSize\":64}"), "\(output)")
    }

    @Test func sampleGridsLayImagesOutInASquare() {
        let images = Tensor(shape: [4, 1, 2, 2], scalars: [-1, -1, -1, -1, 1, 1, 1, 1, 0, 0, 0, 0, -1, 1, -1, 1])
        let grid = SampleGrid.image(images)
        #expect(grid.width == 2 * 4 + 2 && grid.height == 2 * 4 + 2 && grid.channels == 1)
        #expect(
            grid[x: 2, y: 2, channel: 0] == 0 && grid[x: 6, y: 2, channel: 0] == 255
                && grid[x: 2, y: 6, channel: 0] == 128)
        #expect(grid[x: 0, y: 0, channel: 0] == 255)
    }
}
