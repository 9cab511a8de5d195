import Datasets
import Foundation
import Testing

@Suite("Image codecs")
struct CodecTests {
    /// A fuzzer finding (FuzzImages): an ASCII PPM header promising 98 M pixels in a 26-byte file
    /// made the decoder reserve 2.4 GB before reading a sample. It must be a truncation error.
    @Test func anAsciiHeaderPromisingMoreThanTheFileHoldsIsTruncated() throws {
        let data = Data(base64Encoded: "UDMxNSAKNjU1NTY1NSAgMDY1NuEgMDY1IA==")!
        do {
            _ = try Netpbm.decode(data, path: "finding.ppm")
            Issue.record("accepted")
        } catch let error as DataError {
            #expect(error.kind == .truncated || error.kind == .corrupt, "\(error)")
        }
        #expect(throws: DataError.self) { try Netpbm.decode(Data("P2\n4 4\n255\n1 2 3".utf8), path: "short.pgm") }
        let (image, _) = try Netpbm.decode(Data("P2\n2 1\n255\n0 255".utf8), path: "tiny.pgm")
        #expect(image.pixels == [0, 255])
    }

    @Test(arguments: [1, 2, 3, 4])
    func pngRoundTripsExactly(channels: Int) throws {
        let image = TestImages.noise(width: 7, height: 5, channels: channels)
        let decoded = try ImageCodec.decode(try ImageCodec.encodePNG(image), path: "memory.png")
        #expect(decoded.format == .png)
        #expect(decoded.image == image)
    }

    @Test(arguments: [1, 3])
    func jpegRoundTripsClosely(channels: Int) throws {
        let image = TestImages.gradient(width: 32, height: 24, channels: channels)
        let decoded = try ImageCodec.decode(try ImageCodec.encodeJPEG(image, quality: 95), path: "memory.jpg")
        #expect(decoded.format == .jpeg && decoded.mode == (channels == 1 ? "gray" : "RGB"))
        #expect(decoded.image.width == 32 && decoded.image.height == 24 && decoded.image.channels == channels)
        let error = zip(decoded.image.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)
        #expect(
            Double(error) / Double(image.pixels.count) < 3,
            "mean absolute error \(Double(error) / Double(image.pixels.count))")
    }

    @Test func cmykJpegsBecomeRGB() throws {
        // Adobe CMYK is stored inverted, so stored (255, 0, 0, 255) is R = c·k/255 = 255, G = B = 0.
        let red: [UInt8] = [255, 0, 0, 255]
        let pixels = [[UInt8]](repeating: red, count: 16 * 16).flatMap { $0 }
        let decoded = try ImageCodec.decode(
            try ImageCodec.encodeJPEG(PixelImage(width: 16, height: 16, channels: 4, pixels: pixels), quality: 100),
            path: "cmyk.jpg")
        #expect(decoded.mode == "CMYK" && decoded.image.channels == 3)
        #expect(
            decoded.image[x: 8, y: 8, channel: 0] > 245 && decoded.image[x: 8, y: 8, channel: 1] < 10
                && decoded.image[x: 8, y: 8, channel: 2] < 10)
    }

    @Test func netpbmFollowsTheSpecification() throws {
        // docs/formats.md §5: 2x2 P6, red, green / blue, white.
        let vector: [UInt8] = [
            0x50, 0x36, 0x0a, 0x32, 0x20, 0x32, 0x0a, 0x32, 0x35, 0x35, 0x0a, 0xff, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00,
            0x00, 0xff, 0xff, 0xff, 0xff,
        ]
        let image = PixelImage(
            width: 2, height: 2, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
        #expect([UInt8](Netpbm.encode(image)) == vector)
        #expect(try ImageCodec.decode(Data(vector), path: "v.ppm").image == image)
        // Comments, odd whitespace, ASCII variant, 16-bit samples.
        let ascii = "P2 # gray\n# another comment\n3\t1\r\n  4\n0 2 4\n"
        #expect(try ImageCodec.decode(Data(ascii.utf8), path: "a.pgm").image.pixels == [0, 128, 255])
        let deep = Data("P5 2 1 65535\n".utf8) + Data([0xFF, 0xFF, 0x80, 0x00])
        let decoded = try ImageCodec.decode(deep, path: "d.pgm")
        #expect(decoded.image.pixels == [255, 128] && decoded.mode == "gray 16-bit")
        #expect(throws: DataError(.truncated, "t.pgm", "raster has 2 bytes, 4 needed")) {
            try ImageCodec.decode(Data("P5 2 2 255\n".utf8) + Data([1, 2]), path: "t.pgm")
        }
        #expect(throws: DataError.self) {
            try ImageCodec.decode(Data("P5 2 2 0\n".utf8) + Data([1, 2, 3, 4]), path: "z.pgm")
        }
    }

    @Test func exifOrientationIsApplied() throws {
        // Large flat blocks so JPEG leaves them intact: left half dark, right half bright, 16x8.
        var pixels: [UInt8] = []
        for _ in 0..<8 { for x in 0..<16 { pixels.append(x < 8 ? 20 : 230) } }
        let image = PixelImage(width: 16, height: 8, channels: 1, pixels: pixels)
        let plain = try ImageCodec.decode(try TestImages.jpegWithOrientation(image, orientation: 1), path: "o1.jpg")
        #expect(plain.orientationApplied == nil && plain.image.width == 16)
        // Orientation 6: view by rotating 90° clockwise, so the dark left half becomes the top.
        let rotated = try ImageCodec.decode(try TestImages.jpegWithOrientation(image, orientation: 6), path: "o6.jpg")
        #expect(rotated.orientationApplied == 6)
        #expect(rotated.image.width == 8 && rotated.image.height == 16)
        #expect(rotated.image[x: 4, y: 2, channel: 0] < 60 && rotated.image[x: 4, y: 13, channel: 0] > 200)
        // Orientation 3: rotated 180°, dark half moves to the right.
        let upsideDown = try ImageCodec.decode(
            try TestImages.jpegWithOrientation(image, orientation: 3), path: "o3.jpg")
        #expect(upsideDown.image[x: 2, y: 4, channel: 0] > 200 && upsideDown.image[x: 13, y: 4, channel: 0] < 60)
    }

    @Test func damagedFilesAreClassifiedNotCrashes() throws {
        let jpeg = try ImageCodec.encodeJPEG(TestImages.gradient(width: 64, height: 64, channels: 3))
        let png = try ImageCodec.encodePNG(TestImages.noise(width: 64, height: 64, channels: 3))
        let cases: [(String, Data, DataError.Kind)] = [
            ("empty.jpg", Data(), .zeroByte),
            ("truncated.jpg", jpeg.prefix(jpeg.count / 2), .truncated),
            ("truncated.png", png.prefix(png.count / 2), .truncated),
            ("huge.jpg", try TestImages.jpegClaiming(width: 20000, height: 20000), .tooLarge),
            ("huge.png", try TestImages.pngClaiming(width: 20000, height: 20000), .tooLarge),
            ("garbage.jpg", Data((0..<100).map { UInt8($0) }), .unsupported),
            ("header-only.jpg", jpeg.prefix(4), .truncated),
        ]
        for (name, data, kind) in cases {
            do {
                let decoded = try ImageCodec.decode(data, path: name)
                Issue.record("\(name): decoded as \(decoded.image.width)x\(decoded.image.height)")
            } catch let error as DataError {
                #expect(error.kind == kind, "\(name): \(error.kind) (\(error.reason))")
                #expect(error.path == name)
            }
        }
    }

    @Test func gzipAndIDXRoundTrip() throws {
        let values = (0..<(3 * 4 * 5)).map { UInt8($0 * 3 % 256) }
        let raw = IDX.encode(dimensions: [3, 4, 5], values: values)
        #expect([UInt8](raw.prefix(8)) == [0, 0, 8, 3, 0, 0, 0, 3])
        let compressed = try Gzip.compress(raw)
        #expect(Gzip.isCompressed(compressed))
        #expect(try Gzip.decompress(compressed, path: "x.gz") == raw)
        let folder = try TestImages.temporaryFolder("idx")
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, data) in [("a-images-idx3-ubyte", raw), ("b-images-idx3-ubyte.gz", compressed)] {
            let url = folder.appendingPathComponent(name)
            try data.write(to: url)
            let array = try IDX.read(url.path)
            #expect(array.dimensions == [3, 4, 5] && array.values == values)
        }
        #expect(throws: DataError.self) { try IDX.parse(raw.prefix(raw.count - 1), path: "short") }
        #expect(throws: DataError.self) {
            try Gzip.decompress(compressed.prefix(compressed.count / 2), path: "half.gz")
        }
    }

    @Test func sha256KnownAnswers() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array(String(repeating: "a", count: 1000).utf8)
        var streamed = SHA256()
        long.withUnsafeBytes { streamed.update($0) }
        #expect(streamed.finalize() == SHA256.hex(long))
        #expect(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}

@Suite("Resizing and cropping")
struct ResamplingTests {
    @Test func aConstantImageStaysConstant() {
        let image = PixelImage(width: 37, height: 23, channels: 3, pixels: [UInt8](repeating: 173, count: 37 * 23 * 3))
        for (width, height) in [(16, 16), (64, 40), (5, 9)] {
            #expect(Resampling.resize(image, width: width, height: height).pixels.allSatisfy { $0 == 173 })
        }
    }

    @Test func aCheckerboardAveragesWhenShrinking() {
        var pixels: [UInt8] = []
        for y in 0..<64 { for x in 0..<64 { pixels.append((x + y) % 2 == 0 ? 0 : 255) } }
        let board = PixelImage(width: 64, height: 64, channels: 1, pixels: pixels)
        for side in [32, 16, 8] {
            let small = Resampling.resize(board, width: side, height: side)
            // Away from the borders every output pixel sees a balanced mix: 127.5 ± 1.
            for y in 1..<(side - 1) {
                for x in 1..<(side - 1) {
                    #expect(
                        abs(Int(small[x: x, y: y, channel: 0]) - 128) <= 1,
                        "\(side): (\(x), \(y)) = \(small[x: x, y: y, channel: 0])")
                }
            }
        }
    }

    @Test func aRampKeepsItsShape() {
        // A horizontal ramp shrunk 2x: output pixel i averages source pixels 2i and 2i + 1 closely.
        let ramp = PixelImage(
            width: 64, height: 4, channels: 1, pixels: (0..<4).flatMap { _ in (0..<64).map { UInt8($0 * 4) } })
        let small = Resampling.resize(ramp, width: 32, height: 4)
        for x in 2..<30 { #expect(abs(Int(small[x: x, y: 1, channel: 0]) - (8 * x + 2)) <= 1) }
    }

    @Test func cropBoxesFollowTheConventions() {
        #expect(CropPolicy.celeba.box(width: 178, height: 218) == (0, 20, 178, 178))
        #expect(CropPolicy.center.box(width: 178, height: 218) == (0, 20, 178, 178))
        #expect(CropPolicy.center.box(width: 200, height: 100) == (50, 0, 100, 100))
        #expect(CropPolicy.none.box(width: 200, height: 100) == (0, 0, 200, 100))
        let image = TestImages.noise(width: 6, height: 4, channels: 1)
        #expect(image.cropped(left: 1, top: 0, width: 4, height: 4).pixels[0] == image.pixels[1])
        #expect(image.padded(by: 2).width == 10 && image.padded(by: 2).pixels[0] == 0)
        let rgb = PixelImage(width: 1, height: 1, channels: 3, pixels: [255, 0, 0])
        #expect(rgb.converted(toChannels: 1).pixels == [76])
        #expect(
            PixelImage(width: 1, height: 1, channels: 4, pixels: [1, 2, 3, 0]).converted(toChannels: 3).pixels == [
                1, 2, 3,
            ])
    }
}
