import Autodiff
import FileFormats
import Foundation
import GAN
import NeuralNet
import Testing

/// Swift twin of Tests/Reference/model_fixtures_common.py: deterministic tensors from names.
enum Deterministic {
    static func fnv1a(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }

    /// `count` values in [−1, 1) from a SplitMix64-style hash of (name, index).
    static func fill(_ name: String, _ count: Int) -> [Float] {
        let seed = fnv1a(name)
        return (1...max(count, 1)).prefix(count).map { index in
            var x = (UInt64(index) &* 0x9E37_79B9_7F4A_7C15) ^ seed
            x ^= x >> 30
            x = x &* 0xBF58_476D_1CE4_E5B9
            x ^= x >> 27
            x = x &* 0x94D0_49BB_1331_11EB
            x ^= x >> 31
            return Float(x >> 40) * 0x1p-23 - 1
        }
    }

    static func tensor(_ name: String, _ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor(shape: shape, scalars: fill(name, shape.reduce(1, *)).map { $0 * scale })
    }

    /// The value the fixtures give the state tensor `name`.
    static func stateValue(_ name: String, _ shape: [Int]) -> Tensor {
        let values = fill(name, shape.reduce(1, *))
        let transformed: [Float]
        if name.hasSuffix("weight_u") || name.hasSuffix("weight_v") {
            let norm = values.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            transformed = values.map { $0 / (norm + 1e-12) }
        } else if name.hasSuffix("running_mean") {
            transformed = values.map { 0.1 * $0 }
        } else if name.hasSuffix("running_var") {
            transformed = values.map { 1 + 0.25 * $0 }
        } else if name.hasSuffix("gamma") {
            transformed = values.map { 0.3 + 0.1 * $0 }
        } else if name.hasSuffix("norm.bias") {
            transformed = values.map { 3 + 0.1 * $0 }
        } else if name.hasSuffix("norm.weight") {
            transformed = values.map { 1 + 0.1 * $0 }
        } else if name.hasSuffix("bias") {
            transformed = values.map { 0.1 * $0 }
        } else {
            transformed = values.map { 0.05 * $0 }
        }
        return Tensor(shape: shape, scalars: transformed)
    }

    static func setState(of module: any Module, prefix: String) {
        for (name, parameter) in module.namedParameters() {
            parameter.assign(stateValue(prefix + name, parameter.shape))
        }
        for (name, buffer) in module.namedBuffers() { buffer.assign(stateValue(prefix + name, buffer.shape)) }
    }

    /// [‖g‖, ⟨g, r_k⟩, Σ|g r_k|] as the fixture script computes it, in Double.
    static func gradientSummary(_ name: String, _ gradient: Tensor) -> [Double] {
        let g = gradient.scalars.map(Double.init)
        var rows = [g.map { $0 * $0 }.reduce(0, +).squareRoot()]
        let directions = (0..<4).map { fill("\(name)#\($0)", g.count).map(Double.init) }
        rows += directions.map { r in zip(g, r).reduce(0) { $0 + $1.0 * $1.1 } }
        rows += directions.map { r in zip(g, r).reduce(0) { $0 + Swift.abs($1.0 * $1.1) } }
        return rows
    }
}

/// Expects `actual` to match the fixture tensor `name` within `tolerance` relative to its largest magnitude.
func expectMatches(
    _ actual: Tensor, _ file: SafeTensorsFile, _ name: String, tolerance: Float,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let expected = try file.tensor(name)
    #expect(
        actual.shape == expected.shape, "\(name): shape \(actual.shape), PyTorch \(expected.shape)",
        sourceLocation: sourceLocation)
    let scale = max(1e-6, expected.scalars.map { Swift.abs($0) }.max() ?? 0)
    let worst = zip(actual.scalars, expected.scalars).map { Swift.abs($0 - $1) }.max() ?? .infinity
    #expect(
        worst <= tolerance * scale, "\(name): worst difference \(worst) at scale \(scale)",
        sourceLocation: sourceLocation)
}

func fixtureURL(_ name: String) throws -> URL {
    guard let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
        throw SafeTensorsError.unreadable(
            "missing; run Tests/Reference/make_model_fixtures.py", file: "Fixtures/\(name).safetensors")
    }
    return url
}
