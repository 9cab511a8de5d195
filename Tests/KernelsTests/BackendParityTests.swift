import CKernels
import Foundation
import Kernels
import Synchronization
import TestSupport
import Testing

/// Every backend's kernels against the reference backend, forward and each backward, on awkward
/// shapes: oneDNN within tolerances, and the simulated device (reference kernels behind device
/// memory) bit for bit. The oneDNN-only tests check its blocked layouts and threads.
@Suite("Backends match the reference backend")
struct BackendParityTests {
    let reference = BackendRegistry.reference

    /// Every backend here but the reference: oneDNN where its engine starts, and the simulated device.
    static let backends = backendsUnderTest.map(\.id).filter { $0 != .reference }

    static func backend(_ id: BackendID) -> any Backend { BackendRegistry.backend(id)! }

    @Test func oneDNNRunsHere() {
        #expect(Self.backends.contains(.oneDNN), "oneDNN engine unavailable: the fast backend is not tested")
    }

    func random(_ count: Int, seed: UInt64, scale: Float = 1) -> Storage {
        var generator = TestRandom(seed: seed)
        return Storage(generator.floats(count).map { $0 * scale })
    }

    func expectClose(_ actual: Storage?, _ expected: Storage?, _ what: String, tolerance: Float = 1e-4) {
        guard let actual, let expected else {
            #expect(actual == nil && expected == nil, "\(what): one backend returned nothing")
            return
        }
        let a = actual.elements
        let e = expected.elements
        #expect(a.count == e.count, "\(what): \(a.count) vs \(e.count) elements")
        if actual.device == SimulatedDeviceBackend.shared.device {
            #expect(a.map(\.bitPattern) == e.map(\.bitPattern), "\(what): the simulated device differs in some bits")
            return
        }
        let scale = max(1, e.map { Swift.abs($0) }.max() ?? 0)
        let worst = zip(a, e).map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance * scale, "\(what): worst difference \(worst) at scale \(scale)")
    }

    static let convolutions: [Conv2DGeometry] = [
        try! Conv2DGeometry(
            batch: 1, inChannels: 3, outChannels: 4, inHeight: 5, inWidth: 7, kernelHeight: 3, kernelWidth: 3,
            stride: 1, padding: 1),
        try! Conv2DGeometry(
            batch: 3, inChannels: 3, outChannels: 5, inHeight: 5, inWidth: 7, kernelHeight: 3, kernelWidth: 3,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 1, inChannels: 2, outChannels: 3, inHeight: 5, inWidth: 7, kernelHeight: 1, kernelWidth: 1,
            stride: 1, padding: 0),
        try! Conv2DGeometry(
            batch: 3, inChannels: 4, outChannels: 2, inHeight: 8, inWidth: 8, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 1, inChannels: 3, outChannels: 8, inHeight: 7, inWidth: 5, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 0),
        try! Conv2DGeometry(
            batch: 3, inChannels: 1, outChannels: 3, inHeight: 6, inWidth: 6, kernelHeight: 3, kernelWidth: 3,
            stride: 1, padding: 0),
        try! Conv2DGeometry(
            batch: 2, inChannels: 16, outChannels: 32, inHeight: 8, inWidth: 8, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 1, inChannels: 5, outChannels: 3, inHeight: 5, inWidth: 7, kernelHeight: 1, kernelWidth: 1,
            stride: 2, padding: 0),
        // A non-square one whose input gradient takes the sub-pixel path (four 2x2 phases).
        try! Conv2DGeometry(
            batch: 3, inChannels: 1, outChannels: 5, inHeight: 6, inWidth: 34, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        // The blog128 discriminator's layers at batch 2.
        try! Conv2DGeometry(
            batch: 2, inChannels: 3, outChannels: 32, inHeight: 128, inWidth: 128, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 2, inChannels: 32, outChannels: 64, inHeight: 64, inWidth: 64, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 2, inChannels: 64, outChannels: 128, inHeight: 32, inWidth: 32, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 2, inChannels: 128, outChannels: 256, inHeight: 16, inWidth: 16, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 2, inChannels: 256, outChannels: 512, inHeight: 8, inWidth: 8, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1),
        try! Conv2DGeometry(
            batch: 2, inChannels: 64, outChannels: 8, inHeight: 32, inWidth: 32, kernelHeight: 1, kernelWidth: 1,
            stride: 1, padding: 0),
        try! Conv2DGeometry(
            batch: 2, inChannels: 64, outChannels: 64, inHeight: 32, inWidth: 32, kernelHeight: 1, kernelWidth: 1,
            stride: 1, padding: 0),
    ]

    @Test(arguments: backends, convolutions)
    func convolution(_ id: BackendID, _ g: Conv2DGeometry) throws {
        try checkConvolution(Self.backend(id), g)
    }

    /// InceptionV3's rectangular kernels, each padding only its long axis, and a stride-2 3x3.
    @Test(arguments: backends, [(1, 7, 0, 3), (7, 1, 3, 0), (1, 3, 0, 1), (3, 1, 1, 0)])
    func rectangularConvolution(_ id: BackendID, _ kernel: (Int, Int, Int, Int)) throws {
        let (kh, kw, padH, padW) = kernel
        let fast = Self.backend(id)
        try checkConvolution(
            fast,
            Conv2DGeometry(
                batch: 2, inChannels: 5, outChannels: 6, inHeight: 9, inWidth: 8,
                kernelHeight: kh, kernelWidth: kw, stride: 1, paddingHeight: padH, paddingWidth: padW))
        try checkConvolution(
            fast,
            Conv2DGeometry(
                batch: 2, inChannels: 5, outChannels: 6, inHeight: 9, inWidth: 8,
                kernelHeight: kh, kernelWidth: kw, stride: 2, paddingHeight: padH, paddingWidth: padW))
    }

    /// Max and average (padding not counted) pools: SAGAN's 2x2, InceptionV3's 3x3 stride 2 and 3x3 stride 1 padded.
    @Test(
        arguments: backends,
        [
            (PoolOperation.max, 2, 2, 0), (.max, 3, 2, 0), (.max, 3, 1, 1), (.average, 3, 1, 1), (.average, 8, 8, 0),
        ])
    func pooling(_ id: BackendID, _ setting: (PoolOperation, Int, Int, Int)) throws {
        let fast = Self.backend(id)
        let (op, window, stride, padding) = setting
        let g = try Pool2DGeometry(
            batch: 2, channels: 19, inHeight: 17, inWidth: 16, window: window, stride: stride, padding: padding)
        let x = random(ShapeMath.count(g.inputShape), seed: 22)
        expectClose(fast.pool2d(op, g, x), reference.pool2d(op, g, x), "\(op) pool \(g)")
        let dy = random(ShapeMath.count(g.outputShape), seed: 23)
        expectClose(
            fast.pool2dBackward(op, g, input: x, outputGradient: dy),
            reference.pool2dBackward(op, g, input: x, outputGradient: dy),
            "\(op) pool backward \(g)")
    }

    /// A convolution's output reaches the pool in oneDNN's blocked layout (InceptionV3's stem). The
    /// pool reads it as it is when the layout is dense (32 channels) and a row-major copy when it is
    /// padded (19); either way it gives the reference's values, and backward reads the blocked input.
    @Test(arguments: [(PoolOperation.max, 32), (.max, 19), (.average, 32), (.average, 19)])
    func poolingOnBlockedInput(_ setting: (PoolOperation, Int)) throws {
        let fast = try #require(OneDNNBackend.shared)
        let (op, channels) = setting
        let stem = try Conv2DGeometry(
            batch: 2, inChannels: 3, outChannels: channels, inHeight: 19, inWidth: 18,
            kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        let x = fast.conv2dForward(
            stem, input: random(ShapeMath.count(stem.inputShape), seed: 60),
            weight: random(ShapeMath.count(stem.weightShape), seed: 61), bias: nil)
        #expect(x.layout != nil, "the stem convolution should hand over a blocked layout")
        let plainX = x.onHost()
        for (window, stride, padding) in [(3, 2, 0), (3, 1, 1)] {
            let g = try Pool2DGeometry(
                batch: 2, channels: channels, inHeight: 19, inWidth: 18, window: window, stride: stride,
                padding: padding)
            expectClose(fast.pool2d(op, g, x), reference.pool2d(op, g, plainX), "\(op) pool of a blocked input \(g)")
            let dy = random(ShapeMath.count(g.outputShape), seed: 62)
            expectClose(
                fast.pool2dBackward(op, g, input: x, outputGradient: dy),
                reference.pool2dBackward(op, g, input: plainX, outputGradient: dy),
                "\(op) pool backward of a blocked input \(g)")
        }
    }

    func checkConvolution(_ fast: any Backend, _ g: Conv2DGeometry) throws {
        let cout = g.outChannels
        let x = random(ShapeMath.count(g.inputShape), seed: 1)
        let weight = random(ShapeMath.count(g.weightShape), seed: 2)
        let bias = random(cout, seed: 3)
        let dy = random(ShapeMath.count(g.outputShape), seed: 4)
        for b in [bias, nil] {
            expectClose(
                fast.conv2dForward(g, input: x, weight: weight, bias: b),
                reference.conv2dForward(g, input: x, weight: weight, bias: b), "conv forward \(g) bias \(b != nil)")
            let fastWeights = fast.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: b != nil)
            let referenceWeights = reference.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: b != nil)
            expectClose(fastWeights.weight, referenceWeights.weight, "conv backward weights \(g)")
            expectClose(fastWeights.bias, referenceWeights.bias, "conv backward bias \(g)")
        }
        expectClose(
            fast.conv2dBackwardData(g, outputGradient: dy, weight: weight),
            reference.conv2dBackwardData(g, outputGradient: dy, weight: weight), "conv backward data \(g)")
    }

    /// The generator's RGB output layer (16 → 3, 3x3, padding 1) runs on the direct kernels (on AVX-512;
    /// elsewhere on oneDNN, which this then checks the same way). Its input arrives in oneDNN's blocked
    /// layout from the convolution before it, and dx leaves in one.
    @Test func directConvolutionOnBlockedInput() throws {
        let fast = try #require(OneDNNBackend.shared)
        let stem = try Conv2DGeometry(
            batch: 3, inChannels: 5, outChannels: 16, inHeight: 37, inWidth: 70,
            kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        let x = fast.conv2dForward(
            stem, input: random(ShapeMath.count(stem.inputShape), seed: 50),
            weight: random(ShapeMath.count(stem.weightShape), seed: 51), bias: nil)
        #expect(x.layout != nil, "the stem convolution should hand over a blocked layout")
        let g = try Conv2DGeometry(
            batch: 3, inChannels: 16, outChannels: 3, inHeight: 37, inWidth: 70,
            kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        let plainX = x.onHost()
        let weight = random(ShapeMath.count(g.weightShape), seed: 52)
        let bias = random(3, seed: 53)
        let dy = random(ShapeMath.count(g.outputShape), seed: 54)
        expectClose(
            fast.conv2dForward(g, input: x, weight: weight, bias: bias),
            reference.conv2dForward(g, input: plainX, weight: weight, bias: bias), "direct forward")
        let fastWeights = fast.conv2dBackwardWeights(g, outputGradient: dy, input: x, withBias: true)
        let referenceWeights = reference.conv2dBackwardWeights(g, outputGradient: dy, input: plainX, withBias: true)
        expectClose(fastWeights.weight, referenceWeights.weight, "direct backward weights")
        expectClose(fastWeights.bias, referenceWeights.bias, "direct backward bias")
        let dx = fast.conv2dBackwardData(g, outputGradient: dy, weight: weight)
        #expect(dx.layout != nil, "dx should come back in the layout the convolution reads x in")
        expectClose(dx, reference.conv2dBackwardData(g, outputGradient: dy, weight: weight), "direct backward data")
    }

    /// A transposed convolution's bias and γ·o: a per-channel or scalar operand broadcast over a
    /// convolution's blocked output, which keeps its layout.
    @Test(arguments: [(16, 5), (32, 3), (20, 4)])
    func broadcastOverBlockedLayout(_ shape: (channels: Int, side: Int)) throws {
        let fast = try #require(OneDNNBackend.shared)
        let g = try Conv2DGeometry(
            batch: 2, inChannels: 8, outChannels: shape.channels, inHeight: shape.side, inWidth: shape.side,
            kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        let x = fast.conv2dForward(
            g, input: random(ShapeMath.count(g.inputShape), seed: 60),
            weight: random(ShapeMath.count(g.weightShape), seed: 61), bias: nil)
        let dims = g.outputShape
        for (operand, operandShape) in [
            (random(shape.channels, seed: 62), [1, shape.channels, 1, 1]),
            (random(1, seed: 63), [1, 1, 1, 1]),
        ] {
            for op in [BinaryOperation.add, .multiply, .subtract] {
                let result = fast.binary(op, x, dims, operand, operandShape, outputShape: dims)
                // Padded layouts (20 channels in blocks of 16) go row-major by design.
                let dense = x.layout.map { !$0.isPadded } ?? false
                #expect(result.layout != nil || !dense, "\(op) \(operandShape) left the blocked layout")
                expectClose(
                    result, reference.binary(op, x.onHost(), dims, operand, operandShape, outputShape: dims),
                    "\(op) over \(dims) with \(operandShape)")
            }
        }
    }

    @Test(
        arguments: backends,
        [(1, 3, 35, true, true), (3, 4, 1, false, true), (2, 5, 6, true, false), (4, 2, 9, false, false)])
    func batchNormalization(_ id: BackendID, _ shape: (Int, Int, Int, Bool, Bool)) throws {
        let fast = Self.backend(id)
        let (n, c, spatial, withScale, withShift) = shape
        let g = try BatchNormGeometry(batch: n, channels: c, spatial: spatial, epsilon: 1e-3)
        let x = random(g.count, seed: 5, scale: 3)
        let scale = withScale ? random(c, seed: 6) : nil
        let shift = withShift ? random(c, seed: 7) : nil
        let dy = random(g.count, seed: 8)
        let fastResult = fast.batchNormTraining(g, input: x, scale: scale, shift: shift)
        let referenceResult = reference.batchNormTraining(g, input: x, scale: scale, shift: shift)
        expectClose(fastResult.output, referenceResult.output, "batch norm training y \(shape)")
        expectClose(fastResult.mean, referenceResult.mean, "batch norm mean \(shape)")
        expectClose(fastResult.variance, referenceResult.variance, "batch norm variance \(shape)")
        let mean = referenceResult.mean
        let variance = referenceResult.variance
        expectClose(
            fast.batchNormInference(g, input: x, mean: mean, variance: variance, scale: scale, shift: shift),
            reference.batchNormInference(g, input: x, mean: mean, variance: variance, scale: scale, shift: shift),
            "batch norm inference \(shape)")
        for withParameters in [true, false] {
            let f = fast.batchNormBackward(
                g, input: x, outputGradient: dy, mean: mean, variance: variance, scale: scale,
                withParameters: withParameters)
            let r = reference.batchNormBackward(
                g, input: x, outputGradient: dy, mean: mean, variance: variance, scale: scale,
                withParameters: withParameters)
            expectClose(f.input, r.input, "batch norm backward dx \(shape)", tolerance: 1e-3)
            expectClose(f.scale, r.scale, "batch norm backward dscale \(shape)", tolerance: 1e-3)
            expectClose(f.shift, r.shift, "batch norm backward dshift \(shape)", tolerance: 1e-3)
        }
    }

    @Test(arguments: backends, KernelGradientTests.unaryOperations)
    func pointwise(_ id: BackendID, _ op: UnaryOperation) {
        for count in [37, 2 * 64 * 32 * 32] { pointwise(Self.backend(id), op, count: count) }
    }

    func pointwise(_ fast: any Backend, _ op: UnaryOperation, count: Int) {
        let raw = random(count, seed: 9, scale: 2).elements
        let x = Storage(
            raw.map { v -> Float in
                switch op {
                case .sqrt, .log: return Swift.abs(v) + 0.1
                default: return v
                }
            })
        let dy = random(count, seed: 10)
        let y = reference.unary(op, x)
        expectClose(fast.unary(op, x), y, "\(op) forward")
        expectClose(
            fast.unaryBackward(op, input: x, output: y, outputGradient: dy),
            reference.unaryBackward(op, input: x, output: y, outputGradient: dy), "\(op) backward")
    }

    @Test(
        arguments: backends,
        [
            ([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [1, 3, 1]), ([1, 3, 1], [2, 3, 4]), ([3, 1], [1, 5]), ([1], [1]),
            ([4, 5], [1, 1]),
        ])
    func binary(_ id: BackendID, _ shapes: ([Int], [Int])) {
        let fast = Self.backend(id)
        let (aShape, bShape) = shapes
        let outputShape = ShapeMath.broadcast(aShape, bShape)!
        let a = random(ShapeMath.count(aShape), seed: 11)
        let b = Storage(random(ShapeMath.count(bShape), seed: 12).elements.map { $0 < 0 ? $0 - 0.5 : $0 + 0.5 })
        for op in [BinaryOperation.add, .subtract, .multiply, .divide] {
            expectClose(
                fast.binary(op, a, aShape, b, bShape, outputShape: outputShape),
                reference.binary(op, a, aShape, b, bShape, outputShape: outputShape), "\(op) \(aShape) \(bShape)")
        }
    }

    @Test(
        arguments: backends,
        [
            ([2, 3, 4], [1, 3, 1]), ([2, 3, 4], [1, 1, 1]), ([5, 7], [5, 1]), ([3, 2, 5, 7], [1, 2, 1, 1]),
            ([2, 64, 32, 32], [1, 64, 1, 1]), ([2, 64, 32, 32], [1, 1, 1, 1]), ([16, 8192], [1, 8192]),
            ([3, 4, 5], [1, 4, 5]),
        ])
    func reduction(_ id: BackendID, _ shapes: ([Int], [Int])) {
        let fast = Self.backend(id)
        let (shape, outputShape) = shapes
        let x = random(ShapeMath.count(shape), seed: 13)
        for op in [ReductionOperation.sum, .mean, .max] {
            expectClose(
                fast.reduce(op, x, shape: shape, outputShape: outputShape),
                reference.reduce(op, x, shape: shape, outputShape: outputShape), "\(op) \(shape)→\(outputShape)")
        }
    }

    @Test(arguments: backends, [(1, 5), (7, 3), (4, 33), (2, 1), (2048, 1024)])
    func softmax(_ id: BackendID, _ shape: (Int, Int)) {
        let fast = Self.backend(id)
        let (rows, columns) = shape
        let x = random(rows * columns, seed: 14, scale: 4)
        let dy = random(rows * columns, seed: 15)
        let y = reference.softmax(x, rows: rows, columns: columns)
        expectClose(fast.softmax(x, rows: rows, columns: columns), y, "softmax \(shape)")
        expectClose(
            fast.softmaxBackward(output: y, outputGradient: dy, rows: rows, columns: columns),
            reference.softmaxBackward(output: y, outputGradient: dy, rows: rows, columns: columns),
            "softmax backward \(shape)")
    }

    /// (batch, key channels, value channels, queries, keys): tiles of 128 queries, a ragged last tile, pooled keys,
    /// a batch that does not divide among the threads. Run on one thread and on three (images spread over threads).
    @Test(
        arguments: backends,
        [(1, 2, 3, 5, 4), (2, 8, 64, 300, 300), (2, 8, 32, 256, 64), (1, 1, 1, 1, 1), (5, 4, 16, 130, 70)]
    )
    func fusedAttention(_ id: BackendID, _ shape: (Int, Int, Int, Int, Int)) throws {
        let (batch, ck, cv, n, m) = shape
        let fast = Self.backend(id)
        let g = try AttentionGeometry(batch: batch, keyChannels: ck, valueChannels: cv, queries: n, keys: m)
        let q = random(batch * ck * n, seed: 18, scale: 2)
        let k = random(batch * ck * m, seed: 19)
        let v = random(batch * cv * m, seed: 20)
        let dO = random(batch * cv * n, seed: 21)
        let expected = reference.attention(g, queries: q, keys: k, values: v)
        let r = reference.attentionBackward(g, queries: q, keys: k, values: v, outputGradient: dO)
        let threads = fast.threadCount
        defer { if let threads { fast.setThreadCount(threads) } }  // OpenMP's count is per thread: this one's
        for count in threads == nil ? [nil] : [1, 3] {
            if let count { #expect(fast.setThreadCount(count)) }
            let label = "\(shape), \(count.map { "\($0) threads" } ?? id.rawValue)"
            expectClose(fast.attention(g, queries: q, keys: k, values: v), expected, "attention \(label)")
            let f = fast.attentionBackward(g, queries: q, keys: k, values: v, outputGradient: dO)
            expectClose(f.queries, r.queries, "attention dq \(label)")
            expectClose(f.keys, r.keys, "attention dk \(label)")
            expectClose(f.values, r.values, "attention dv \(label)")
        }
    }

    @Test(
        arguments: backends,
        [
            (1, 1, 3, 5, 4), (3, 3, 2, 7, 5), (3, 1, 4, 3, 6), (1, 2, 5, 1, 3), (2, 2, 1024, 1024, 8),
            (2, 2, 64, 1024, 1024),
        ])
    func matmul(_ id: BackendID, _ shape: (Int, Int, Int, Int, Int)) throws {
        let fast = Self.backend(id)
        let (batchA, batchB, m, n, k) = shape
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let g = try MatmulGeometry(
                batchA: batchA, batchB: batchB, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)
            let a = random(batchA * m * k, seed: 16)
            let b = random(batchB * k * n, seed: 17)
            expectClose(
                fast.matmul(g, a, b), reference.matmul(g, a, b),
                "matmul \(shape) transposes \(transposeA) \(transposeB)")
        }
    }

    /// Spectral norm, forward with and without the power iteration and backward, on the blog128
    /// models' shapes: D's head (1 output), a 512-output convolution, G's 512x256 transposed
    /// convolution (512 blocks), G's projection (8192 outputs of 128), and a small odd one.
    @Test(arguments: backends, [(1, 1, 8192), (1, 512, 4096), (512, 256, 16), (1, 8192, 128), (3, 5, 7)])
    func spectralNorm(_ id: BackendID, _ shape: (Int, Int, Int)) throws {
        let fast = Self.backend(id)
        let (blocks, outputs, inner) = shape
        let g = try SpectralNormGeometry(blocks: blocks, outputs: outputs, inner: inner, epsilon: 1e-12)
        let weight = random(g.count, seed: 40, scale: 0.05)
        let gradient = random(g.count, seed: 41)
        let u = random(outputs, seed: 42)
        let v = random(g.rightCount, seed: 43)
        for powerIteration in [false, true] {
            let f = fast.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: powerIteration)
            let r = reference.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: powerIteration)
            #expect(Swift.abs(f.sigma - r.sigma) <= 1e-4 * Swift.abs(r.sigma), "σ \(shape): \(f.sigma) vs \(r.sigma)")
            expectClose(f.weight, r.weight, "W/σ \(shape)")
            expectClose(f.u, r.u, "u \(shape)")
            expectClose(f.v, r.v, "v \(shape)")
            let df = fast.spectralNormBackward(
                g, weight: weight, outputGradient: gradient, u: r.u, v: r.v, sigma: r.sigma)
            let dr = reference.spectralNormBackward(
                g, weight: weight, outputGradient: gradient, u: r.u, v: r.v, sigma: r.sigma)
            expectClose(df, dr, "dW \(shape)")
        }
    }

    /// A 4x4 convolution weight's W/σ comes out of the oneDNN backend in the blocked layout its
    /// forward convolution reads; the convolutions on both sides of a layer (forward, and backward
    /// data, which reads the other blocked layout) must give the reference backend's results from it.
    /// (out, in) of a Conv2d weight, and a transposed convolution's (in, out) with one block per input channel.
    @Test(arguments: [(1, 64, 32), (32, 48, 64)])
    func spectrallyNormalisedConvolutionWeights(_ shape: (Int, Int, Int)) throws {
        let fast = try #require(OneDNNBackend.shared)
        let (blocks, first, second) = shape
        let weightShape = [first, second, 4, 4]
        let outputs = blocks == 1 ? first : second
        let g = try SpectralNormGeometry(
            blocks: blocks == 1 ? 1 : first, outputs: outputs, inner: blocks == 1 ? second * 16 : 16,
            epsilon: 1e-12, weightShape: weightShape)
        let weight = random(g.count, seed: 44, scale: 0.05)
        let u = random(outputs, seed: 45)
        let v = random(g.rightCount, seed: 46)
        let f = fast.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: true)
        let r = reference.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: true)
        // Our 16-channel transposes run on AVX-512; elsewhere W/σ stays row-major.
        #expect(
            (f.weight.layout != nil) == (sagan_kernels_use_avx512() != 0), "W/σ's layout: \(f.weight.layout as Any)")
        expectClose(f.weight, r.weight, "W/σ \(shape)")
        let conv = try Conv2DGeometry(
            batch: 2, inChannels: second, outChannels: first, inHeight: 8, inWidth: 8,
            kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)
        let x = random(ShapeMath.count(conv.inputShape), seed: 47)
        let dy = random(ShapeMath.count(conv.outputShape), seed: 48)
        expectClose(
            fast.conv2dForward(conv, input: x, weight: f.weight, bias: nil),
            reference.conv2dForward(conv, input: x, weight: r.weight, bias: nil), "forward with W/σ \(shape)")
        expectClose(
            fast.conv2dBackwardData(conv, outputGradient: dy, weight: f.weight),
            reference.conv2dBackwardData(conv, outputGradient: dy, weight: r.weight), "backward data with W/σ \(shape)")
    }

    /// Primitives are cached and shared, so one created on one thread runs on others. With oneDNN's
    /// own ("library") scratchpad that wrote through a null pointer on a thread that never created
    /// one: a convolution with 4 input channels takes the gemm kernel on AVX2, which needs scratch.
    /// Each shape runs first here and then on new threads, and must give the reference's result.
    @Test func aPrimitiveRunsOnThreadsOtherThanItsCreators() throws {
        let fast = try #require(OneDNNBackend.shared)
        let conv = try Conv2DGeometry(
            batch: 4, inChannels: 4, outChannels: 8, inHeight: 32, inWidth: 32, kernelHeight: 4, kernelWidth: 4,
            stride: 2, padding: 1)
        let x = random(ShapeMath.count(conv.inputShape), seed: 61)
        let weight = random(8 * 4 * 16, seed: 62, scale: 0.1)
        let dy = random(ShapeMath.count(conv.outputShape), seed: 63)
        let expected = (
            reference.conv2dForward(conv, input: x, weight: weight, bias: nil),
            reference.conv2dBackwardData(conv, outputGradient: dy, weight: weight)
        )
        let backend = fast as any Backend
        @Sendable func run() -> (Storage, Storage) {
            (
                backend.conv2dForward(conv, input: x, weight: weight, bias: nil),
                backend.conv2dBackwardData(conv, outputGradient: dy, weight: weight)
            )
        }
        _ = run()
        for _ in 0..<2 {
            let results = Mutex<(Storage, Storage)?>(nil)
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                let output = run()
                results.withLock { $0 = output }
                done.signal()
            }
            thread.start()
            done.wait()
            let (y, dx) = try #require(results.withLock { $0 })
            expectClose(y, expected.0, "forward on another thread")
            expectClose(dx, expected.1, "backward data on another thread")
        }
    }

    /// The fused Adam update against the reference loop, from zero moments and from given ones,
    /// on a size that splits into uneven chunks over the threads; and against the formula in Double.
    @Test(arguments: backends)
    func adamUpdate(_ id: BackendID) throws {
        let fast = Self.backend(id)
        let count = 200_003
        let step = AdamStep(
            learningRate: 4e-4, beta1: 0.5, beta2: 0.9, epsilon: 1e-8, correction1: 0.75, correction2: 0.19)
        let p = random(count, seed: 30)
        let g = random(count, seed: 31)
        let m = random(count, seed: 32)
        let v = Storage(random(count, seed: 33).elements.map { Swift.abs($0) })
        for (first, second) in [(nil, nil), (m, v)] as [(Storage?, Storage?)] {
            let f = fast.adamUpdate(step, parameter: p, gradient: g, first: first, second: second)
            let r = reference.adamUpdate(step, parameter: p, gradient: g, first: first, second: second)
            expectClose(f.parameter, r.parameter, "adam parameter")
            expectClose(f.first, r.first, "adam first moment")
            expectClose(f.second, r.second, "adam second moment")
            let (pe, ge, me, ve) = (p.elements, g.elements, first?.elements, second?.elements)
            for i in stride(from: 0, to: count, by: 9973) {
                let (gi, mi, vi) = (Double(ge[i]), me.map { Double($0[i]) } ?? 0, ve.map { Double($0[i]) } ?? 0)
                let m1 = 0.5 * mi + 0.5 * gi
                let v1 = 0.9 * vi + 0.1 * gi * gi
                let expected = Double(pe[i]) - m1 / ((v1 / 0.19).squareRoot() + 1e-8) * (4e-4 / 0.75)
                #expect(Swift.abs(Double(f.parameter.elements[i]) - expected) < 1e-6, "element \(i)")
            }
        }
    }
}
