import Autodiff
import FileFormats
import Foundation
import NeuralNet
import Testing

@Suite("safetensors")
struct SafeTensorsTests {
    /// docs/formats.md §2.4: byte-identical to safetensors 0.8.0's `save`.
    static let referenceFile: [UInt8] = {
        var bytes: [UInt8] = [0xa0, 0, 0, 0, 0, 0, 0, 0]
        let json =
            #"{"__metadata__":{"format":"pt"},"G.fc.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""G.fc.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}} "#
        bytes += Array(json.utf8)
        bytes += [
            0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40,
            0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40,
        ]
        return bytes
    }()

    func header(_ json: String, data: [UInt8] = []) -> Data {
        var bytes = withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian, Array.init)
        bytes += Array(json.utf8) + data
        return Data(bytes)
    }

    @Test func writesTheReferenceBytes() throws {
        let encoded = try SafeTensorsFile.encode(
            [
                ("G.fc.weight", Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])),
                ("G.fc.bias", Tensor(shape: [2], scalars: [0.5, -0.5])),
            ],
            metadata: ["format": "pt"])
        #expect(Array(encoded) == Self.referenceFile)
        #expect(encoded.count == 192)
    }

    @Test func readsTheReferenceFileAndOtherOrders() throws {
        let file = try SafeTensorsFile(Data(Self.referenceFile))
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.tensor("G.fc.weight").scalars == [1, 2, 3, 4])
        #expect(try file.tensor("G.fc.bias").shape == [2])
        let reordered =
            #"{"G.fc.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"#
            + #""G.fc.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#
        let padded = reordered + String(repeating: " ", count: 7)
        let data: [UInt8] = [
            0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0, 0x3f, 0, 0, 0, 0xbf,
        ]
        let other = try SafeTensorsFile(header(padded, data: data))
        #expect(try other.tensor("G.fc.weight").scalars == [1, 2, 3, 4])
        #expect(try other.tensor("G.fc.bias").scalars == [0.5, -0.5])
    }

    @Test func damagedFilesAreErrorsNotCrashes() throws {
        let f32 = { (offsets: String, shape: String) in
            #"{"a":{"dtype":"F32","shape":\#(shape),"data_offsets":\#(offsets)}}"#
        }
        let cases: [(String, Data, String)] = [
            ("too small", Data([1, 2, 3]), "too small"),
            (
                "oversized header", Data(withUnsafeBytes(of: UInt64(200_000_000).littleEndian, Array.init) + [0x7b]),
                "exceeds the limit"
            ),
            (
                "truncated header",
                Data(withUnsafeBytes(of: UInt64(64).littleEndian, Array.init) + Array("{\"a\"".utf8)), "truncated"
            ),
            ("not JSON", header("{nope}"), "not a JSON object"),
            ("not an object", header("[1,2]"), "does not start with '{'"),
            (
                "unknown dtype",
                header(#"{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                "unknown dtype \"F31\""
            ),
            (
                "size mismatch", header(f32("[0,8]", "[3]"), data: Array(repeating: 0, count: 8)),
                "do not hold shape [3]"
            ),
            ("out of range", header(f32("[0,8]", "[2]"), data: [0, 0, 0, 0]), "truncated: tensors need 8 data bytes"),
            ("gap", header(f32("[4,8]", "[1]"), data: Array(repeating: 0, count: 8)), "leave a gap"),
            ("extra bytes", header(f32("[0,4]", "[1]"), data: Array(repeating: 0, count: 8)), "after the last tensor"),
            ("negative offset", header(f32("[-4,0]", "[1]"), data: []), "data_offsets"),
            ("bad shape", header(f32("[0,4]", "[-1]"), data: [0, 0, 0, 0]), "shape"),
            ("huge shape", header(f32("[0,4]", "[4000000000000,4000000000000]"), data: [0, 0, 0, 0]), "too large"),
            (
                "overlap",
                header(
                    #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                        + #""b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    data: Array(repeating: 0, count: 8)), "overlap"
            ),
            ("bad metadata", header(#"{"__metadata__":{"a":1}}"#), "__metadata__"),
        ]
        for (what, data, message) in cases {
            do {
                _ = try SafeTensorsFile(data)
                Issue.record("\(what): accepted")
            } catch let error as SafeTensorsError {
                #expect(error.description.contains(message), "\(what): \(error.description)")
            }
        }
    }

    @Test func modulesRoundTripAndRefuseMismatchesWithoutPartialLoads() throws {
        var generator = RandomGenerator(seed: 1)
        let source = Conv2d(inputs: 2, outputs: 3, kernel: 3, spectralNorm: true, generator: &generator)
        let target = Conv2d(inputs: 2, outputs: 3, kernel: 3, spectralNorm: true, generator: &generator)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("conv.safetensors")
        try SafeTensorsFile.write(source.stateTensors(prefix: "D.conv."), metadata: ["kind": "test"], to: url)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["conv.safetensors"],
            "no temporary file left")
        let file = try SafeTensorsFile(contentsOf: url)
        try target.loadState(from: file, prefix: "D.conv.")
        for ((name, a), (_, b)) in zip(source.stateTensors(), target.stateTensors()) {
            #expect(a.scalars == b.scalars, "\(name)")
        }

        let before = target.stateTensors().map(\.tensor.scalars)
        let wrongShape = Conv2d(inputs: 2, outputs: 4, kernel: 3, spectralNorm: true, generator: &generator)
        #expect(
            throws: SafeTensorsError.wrongShape(
                "D.conv.weight", found: [4, 2, 3, 3], expected: [3, 2, 3, 3], file: "checkpoint")
        ) {
            try target.loadState(
                from: try SafeTensorsFile(SafeTensorsFile.encode(wrongShape.stateTensors(prefix: "D.conv."))),
                prefix: "D.conv.")
        }
        let plain = Conv2d(inputs: 2, outputs: 3, kernel: 3, generator: &generator)
        #expect(throws: SafeTensorsError.missingTensor("D.conv.weight_u", file: "checkpoint")) {
            try target.loadState(
                from: try SafeTensorsFile(SafeTensorsFile.encode(plain.stateTensors(prefix: "D.conv."))),
                prefix: "D.conv.")
        }
        #expect(throws: SafeTensorsError.unexpectedTensor("D.conv.weight_u", file: "checkpoint")) {
            try plain.loadState(from: file, prefix: "D.conv.")
        }
        #expect(target.stateTensors().map(\.tensor.scalars) == before, "a failed load changed nothing")
        #expect(throws: SafeTensorsError.self) {
            try SafeTensorsFile(contentsOf: folder.appendingPathComponent("missing.safetensors"))
        }
    }
}
