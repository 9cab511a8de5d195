import Autodiff
import Foundation
import Kernels
import TestSupport
import Testing

/// One fixture written by Tests/Reference/make_fixtures.py.
struct Fixture: Decodable {
    struct Array: Decodable {
        let shape: [Int]
        let data: [Float]
        var tensor: Tensor { Tensor(shape: shape, scalars: data) }
    }
    let name: String
    let settings: [String: Double]
    let inputs: [String: Array]
    let upstream: Array
    let output: Array
    let gradients: [String: Array]
    let extra: [String: Array]?

    static func load(_ name: String) throws -> Fixture {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "Fixtures/\(name).json"])
        }
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func setting(_ key: String) -> Int { Int(settings[key] ?? 0) }
    func float(_ key: String) -> Float { Float(settings[key] ?? 0) }
}

/// Expects `actual` to match a PyTorch array within a relative tolerance.
func expectMatches(
    _ actual: Tensor, _ expected: Fixture.Array, _ what: String, tolerance: Float = 1e-4,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        actual.shape == expected.shape, "\(what): shape \(actual.shape) vs PyTorch \(expected.shape)",
        sourceLocation: sourceLocation)
    let scale = max(1, expected.data.map { Swift.abs($0) }.max() ?? 0)
    let worst = zip(actual.scalars, expected.data).map { Swift.abs($0 - $1) }.max() ?? .infinity
    #expect(
        worst <= tolerance * scale, "\(what): worst difference \(worst) from PyTorch (scale \(scale))",
        sourceLocation: sourceLocation)
}

@Suite("Operations match PyTorch 1.13 fixtures", .tags(.slow), .skippedInFastRuns)
struct PyTorchFixtureTests {
    /// Runs `op` on the fixture's inputs (in the order of `names`) and checks the output and every gradient.
    func check(_ fixtureName: String, _ names: [String], backend: any Backend, _ op: (Fixture, [Tensor]) -> Tensor)
        throws
    {
        let fixture = try Fixture.load(fixtureName)
        withBackend(backend) {
            let leaves = names.map { fixture.inputs[$0]!.tensor.trackingGradients() }
            let (_, grads) = valueAndGradients(
                of: {
                    let output = op(fixture, leaves)
                    expectMatches(output.detached(), fixture.output, "\(fixtureName) output on \(backend.name)")
                    return (output * fixture.upstream.tensor).sum()
                }, wrt: leaves)
            for (name, gradient) in zip(names, grads) {
                expectMatches(
                    gradient, fixture.gradients[name]!, "\(fixtureName) gradient of \(name) on \(backend.name)")
            }
        }
    }

    static let backends: [any Backend] = backendsUnderTest

    @Test(arguments: backends)
    func convolution(backend: any Backend) throws {
        for name in ["conv2d_3x3_s2_p1", "conv2d_4x4_s2_p1", "conv2d_1x1_s1_p0"] {
            try check(name, ["x", "weight", "bias"], backend: backend) { f, t in
                .conv2d(t[0], weight: t[1], bias: t[2], stride: f.setting("stride"), padding: f.setting("padding"))
            }
        }
    }

    @Test(arguments: backends)
    func transposedConvolution(backend: any Backend) throws {
        for name in ["conv_transpose2d_4x4_s2_p1", "conv_transpose2d_3x3_s2_p1_op1"] {
            try check(name, ["x", "weight", "bias"], backend: backend) { f, t in
                .convTranspose2d(
                    t[0], weight: t[1], bias: t[2], stride: f.setting("stride"), padding: f.setting("padding"),
                    outputPadding: f.setting("outputPadding"))
            }
        }
    }

    @Test(arguments: backends)
    func batchNormalization(backend: any Backend) throws {
        try check("batch_norm_train", ["x", "scale", "shift"], backend: backend) { f, t in
            .batchNormTraining(t[0], scale: t[1], shift: t[2], epsilon: f.float("epsilon")).output
        }
        try check("batch_norm_train_shift_only", ["x", "shift"], backend: backend) { f, t in
            .batchNormTraining(t[0], scale: nil, shift: t[1], epsilon: f.float("epsilon")).output
        }
        try check("batch_norm_eval", ["x", "scale", "shift"], backend: backend) { f, t in
            .batchNormInference(
                t[0], mean: f.extra!["mean"]!.tensor, variance: f.extra!["variance"]!.tensor,
                scale: t[1], shift: t[2], epsilon: f.float("epsilon"))
        }
    }

    @Test(arguments: backends)
    func activationsSoftmaxAndBatchedProducts(backend: any Backend) throws {
        try check("leaky_relu_0.2", ["x"], backend: backend) { f, t in t[0].leakyRelu(slope: f.float("slope")) }
        try check("leaky_relu_0.02", ["x"], backend: backend) { f, t in t[0].leakyRelu(slope: f.float("slope")) }
        try check("relu", ["x"], backend: backend) { _, t in t[0].relu() }
        try check("tanh", ["x"], backend: backend) { _, t in t[0].tanh() }
        try check("softmax", ["x"], backend: backend) { _, t in t[0].softmax() }
        try check("bmm", ["a", "b"], backend: backend) { _, t in .matmul(t[0], t[1]) }
    }
}
