import Kernels
import Testing

/// Finite-difference checks of every reference backward kernel against its forward kernel, in Double.
///
/// For a forward f and random weights r, the loss L(x) = Σ r ⊙ f(x) has gradient backward(r); the
/// checks compare that with central differences (L(x + h) − L(x − h)) / 2h at every input element.
@Suite("Reference kernel gradients (Double, finite differences)")
struct KernelGradientTests {
    /// Central-difference gradient of `loss` at `x`.
    func numericGradient(_ x: [Double], step: Double = 1e-6, _ loss: ([Double]) -> Double) -> [Double] {
        var probe = x
        return x.indices.map { i in
            probe[i] = x[i] + step
            let plus = loss(probe)
            probe[i] = x[i] - step
            let minus = loss(probe)
            probe[i] = x[i]
            return (plus - minus) / (2 * step)
        }
    }

    func expectClose(_ analytic: [Double], _ numeric: [Double], _ what: String, tolerance: Double = 1e-6) {
        #expect(analytic.count == numeric.count)
        let scale = max(1, numeric.map { Swift.abs($0) }.max() ?? 0)
        let worst = zip(analytic, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance * scale, "\(what): worst difference \(worst) (gradient scale \(scale))")
    }

    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// (batch, in, out, height, width, kernel height, kernel width, stride, padding rows, padding columns).
    @Test(arguments: [
        (1, 2, 3, 5, 7, 3, 3, 1, 1, 1), (2, 3, 2, 6, 5, 4, 4, 2, 1, 1), (3, 1, 2, 4, 4, 1, 1, 1, 0, 0),
        (1, 2, 2, 7, 5, 3, 3, 2, 0, 0),
        (2, 2, 3, 5, 8, 1, 7, 1, 0, 3), (1, 3, 2, 8, 5, 7, 1, 1, 3, 0), (2, 2, 2, 6, 7, 3, 1, 2, 1, 0),
    ])
    func convolution(_ shape: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let (n, cin, cout, h, w, kh, kw, stride, padH, padW) = shape
        let g = try Conv2DGeometry(
            batch: n, inChannels: cin, outChannels: cout, inHeight: h, inWidth: w,
            kernelHeight: kh, kernelWidth: kw, stride: stride, paddingHeight: padH, paddingWidth: padW)
        var random = TestRandom(seed: 1)
        let x = random.doubles(g.inputShape.reduce(1, *))
        let weight = random.doubles(g.weightShape.reduce(1, *))
        let bias = random.doubles(cout)
        let r = random.doubles(g.outputShape.reduce(1, *))
        func forward(_ x: [Double], _ weight: [Double], _ bias: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: r.count)
            ReferenceKernels.conv2dForward(g, y: &y, x: x, w: weight, b: bias)
            return y
        }
        var dx = [Double](repeating: 0, count: x.count)
        ReferenceKernels.conv2dBackwardData(g, dx: &dx, dy: r, w: weight)
        expectClose(dx, numericGradient(x) { dot(r, forward($0, weight, bias)) }, "conv2d dx \(shape)")
        var dw = [Double](repeating: 0, count: weight.count)
        var db = [Double](repeating: 0, count: cout)
        ReferenceKernels.conv2dBackwardWeights(g, dw: &dw, db: &db, dy: r, x: x)
        expectClose(dw, numericGradient(weight) { dot(r, forward(x, $0, bias)) }, "conv2d dw \(shape)")
        expectClose(db, numericGradient(bias) { dot(r, forward(x, weight, $0)) }, "conv2d db \(shape)")
    }

    @Test(arguments: [(2, 3, 5, true), (3, 2, 1, false), (1, 4, 6, true)])
    func batchNormalization(_ shape: (Int, Int, Int, Bool)) throws {
        let (n, c, spatial, withScale) = shape
        let g = try BatchNormGeometry(batch: n, channels: c, spatial: spatial, epsilon: 1e-3)
        var random = TestRandom(seed: 2)
        let x = random.doubles(g.count)
        let scale = random.doubles(c)
        let shift = random.doubles(c)
        let r = random.doubles(g.count)
        func forward(_ x: [Double], _ scale: [Double], _ shift: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: g.count)
            var mean = [Double](repeating: 0, count: c)
            var variance = [Double](repeating: 0, count: c)
            ReferenceKernels.batchNormTraining(
                g, y: &y, mean: &mean, variance: &variance, x: x,
                scale: withScale ? scale : nil, shift: shift)
            return y
        }
        var mean = [Double](repeating: 0, count: c)
        var variance = [Double](repeating: 0, count: c)
        var y = [Double](repeating: 0, count: g.count)
        ReferenceKernels.batchNormTraining(
            g, y: &y, mean: &mean, variance: &variance, x: x, scale: withScale ? scale : nil, shift: shift)
        var dx = [Double](repeating: 0, count: g.count)
        var dScale = [Double](repeating: 0, count: c)
        var dShift = [Double](repeating: 0, count: c)
        ReferenceKernels.batchNormBackward(
            g, dx: &dx, dScale: &dScale, dShift: &dShift, dy: r, x: x,
            mean: mean, variance: variance, scale: withScale ? scale : nil)
        expectClose(dx, numericGradient(x) { dot(r, forward($0, scale, shift)) }, "batchNorm dx \(shape)")
        if withScale {
            expectClose(dScale, numericGradient(scale) { dot(r, forward(x, $0, shift)) }, "batchNorm dscale")
        }
        expectClose(dShift, numericGradient(shift) { dot(r, forward(x, scale, $0)) }, "batchNorm dshift")
    }

    static let unaryOperations: [UnaryOperation] = [
        .relu, .leakyRelu(slope: 0.02), .leakyRelu(slope: 0.2), .tanh, .sqrt, .exp, .log, .square, .abs,
        .affine(scale: -1.5, shift: 0.25),
    ]

    @Test(arguments: unaryOperations)
    func pointwise(_ op: UnaryOperation) {
        var random = TestRandom(seed: 3)
        // Stay clear of the kinks at 0 and of the domain edge of sqrt and log.
        let x = random.doubles(40).map { v in
            switch op {
            case .sqrt, .log: return Swift.abs(v) + 0.2
            default: return v < 0 ? v - 0.05 : v + 0.05
            }
        }
        let r = random.doubles(40)
        func forward(_ x: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: x.count)
            ReferenceKernels.unary(op, y: &y, x: x, count: x.count)
            return y
        }
        var dx = [Double](repeating: 0, count: x.count)
        ReferenceKernels.unaryBackward(op, dx: &dx, x: x, y: forward(x), dy: r, count: x.count)
        expectClose(dx, numericGradient(x) { dot(r, forward($0)) }, "\(op)")
    }

    @Test(arguments: [(1, 5), (3, 4), (6, 1)])
    func softmax(_ shape: (Int, Int)) {
        let (rows, columns) = shape
        var random = TestRandom(seed: 4)
        let x = random.doubles(rows * columns).map { $0 * 3 }
        let r = random.doubles(rows * columns)
        func forward(_ x: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: x.count)
            ReferenceKernels.softmax(y: &y, x: x, rows: rows, columns: columns)
            return y
        }
        var dx = [Double](repeating: 0, count: x.count)
        ReferenceKernels.softmaxBackward(dx: &dx, y: forward(x), dy: r, rows: rows, columns: columns)
        expectClose(dx, numericGradient(x) { dot(r, forward($0)) }, "softmax \(shape)")
    }

    @Test(arguments: [(1, 2, 3, 5, 4), (2, 3, 2, 4, 7)])
    func fusedAttention(_ shape: (Int, Int, Int, Int, Int)) throws {
        let (batch, ck, cv, n, m) = shape
        let g = try AttentionGeometry(batch: batch, keyChannels: ck, valueChannels: cv, queries: n, keys: m)
        var random = TestRandom(seed: 6)
        let q = random.doubles(batch * ck * n)
        let k = random.doubles(batch * ck * m)
        let v = random.doubles(batch * cv * m)
        let r = random.doubles(batch * cv * n)
        func forward(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] {
            var o = [Double](repeating: 0, count: r.count)
            ReferenceKernels.attention(g, o: &o, q: q, k: k, v: v)
            return o
        }
        var dq = [Double](repeating: 0, count: q.count)
        var dk = [Double](repeating: 0, count: k.count)
        var dv = [Double](repeating: 0, count: v.count)
        ReferenceKernels.attentionBackward(g, dq: &dq, dk: &dk, dv: &dv, q: q, k: k, v: v, dO: r)
        expectClose(dq, numericGradient(q) { dot(r, forward($0, k, v)) }, "attention dq \(shape)")
        expectClose(dk, numericGradient(k) { dot(r, forward(q, $0, v)) }, "attention dk \(shape)")
        expectClose(dv, numericGradient(v) { dot(r, forward(q, k, $0)) }, "attention dv \(shape)")
    }

    /// (blocks, outputs, inner): a Linear or Conv2d weight (one block) and a transposed convolution's
    /// (in, out, k) weight (one block per input channel).
    @Test(arguments: [(1, 3, 5), (3, 2, 4), (4, 1, 3)])
    func spectralNorm(_ shape: (Int, Int, Int)) throws {
        let (blocks, outputs, inner) = shape
        let g = try SpectralNormGeometry(blocks: blocks, outputs: outputs, inner: inner, epsilon: 1e-12)
        var random = TestRandom(seed: 7)
        let weight = random.doubles(g.count)
        let r = random.doubles(g.count)
        let u = random.doubles(outputs)
        let v = random.doubles(g.rightCount)
        /// W/σ with u and v constant, and the vectors σ used.
        func forward(_ weight: [Double], powerIteration: Bool) -> (
            normalized: [Double], sigma: Double, u: [Double], v: [Double]
        ) {
            var normalized = [Double](repeating: 0, count: g.count)
            var newU = [Double](repeating: 0, count: outputs)
            var newV = [Double](repeating: 0, count: g.rightCount)
            let sigma = ReferenceKernels.spectralNorm(
                g, normalizedOut: &normalized, uOut: &newU, vOut: &newV, weight: weight, u: u, v: v,
                powerIteration: powerIteration)
            return (normalized, sigma, newU, newV)
        }
        var dw = [Double](repeating: 0, count: g.count)
        let value = forward(weight, powerIteration: false)
        ReferenceKernels.spectralNormBackward(
            g, weightGradientOut: &dw, weight: weight, outputGradient: r, u: u, v: v, sigma: value.sigma)
        expectClose(
            dw, numericGradient(weight) { dot(r, forward($0, powerIteration: false).normalized) },
            "spectral norm dW \(shape)")

        // One power iteration against the (outputs, blocks·inner) matrix written out.
        let matrix = (0..<outputs).map { o in
            (0..<g.rightCount).map { c in weight[(c / inner * outputs + o) * inner + c % inner] }
        }
        func normalized(_ x: [Double]) -> [Double] {
            let norm = dot(x, x).squareRoot()
            return x.map { $0 / (norm + 1e-12) }
        }
        let expectedV = normalized(
            (0..<g.rightCount).map { c in (0..<outputs).reduce(0) { $0 + matrix[$1][c] * u[$1] } })
        let product = matrix.map { dot($0, expectedV) }
        let expectedU = normalized(product)
        let stepped = forward(weight, powerIteration: true)
        expectClose(stepped.v, expectedV, "spectral norm v \(shape)", tolerance: 1e-12)
        expectClose(stepped.u, expectedU, "spectral norm u \(shape)", tolerance: 1e-12)
        #expect(Swift.abs(stepped.sigma - dot(expectedU, product)) < 1e-12)
        expectClose(
            stepped.normalized, weight.map { $0 / dot(expectedU, product) }, "spectral norm W/σ \(shape)",
            tolerance: 1e-12)
        // Without the power iteration σ = uᵀ W v with the vectors as given.
        #expect(Swift.abs(value.sigma - dot(u, matrix.map { dot($0, v) })) < 1e-12)
        #expect(value.u == u && value.v == v)
    }

    /// (window, stride, padding) on a 2x3x7x6 input: SAGAN's 2x2 pool, InceptionV3's 3x3 stride-2 and
    /// 3x3 stride-1 padded pools (overlapping windows, windows cut by the border).
    @Test(arguments: [
        (PoolOperation.max, 2, 2, 0), (.max, 3, 2, 0), (.max, 3, 1, 1), (.average, 3, 1, 1), (.average, 3, 2, 1),
        (.average, 2, 2, 0),
    ])
    func pooling(_ setting: (PoolOperation, Int, Int, Int)) throws {
        let (op, window, stride, padding) = setting
        let g = try Pool2DGeometry(
            batch: 2, channels: 3, inHeight: 7, inWidth: 6, window: window, stride: stride, padding: padding)
        var random = TestRandom(seed: 5)
        // Distinct values, well separated, so no max window has a near-tie.
        let x = random.permutation(2 * 3 * 7 * 6).map { Double($0) * 0.1 }
        let r = random.doubles(g.outputShape.reduce(1, *))
        func forward(_ x: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: r.count)
            ReferenceKernels.pool2d(op, g, y: &y, x: x)
            return y
        }
        var dx = [Double](repeating: 0, count: x.count)
        ReferenceKernels.pool2dBackward(op, g, dx: &dx, x: x, dy: r)
        expectClose(dx, numericGradient(x, step: 1e-3) { dot(r, forward($0)) }, "pool2d \(setting)")
        if op == .average, padding == 1, stride == 1 {
            // The corner window holds 4 real elements: their mean, not a ninth of their sum.
            let y = forward(x)
            #expect(Swift.abs(y[0] - (x[0] + x[1] + x[6] + x[7]) / 4) < 1e-12)
        }
    }
}

/// A small deterministic generator for test data (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x1234_5678 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func doubles(_ count: Int) -> [Double] { (0..<count).map { _ in Double(next() >> 11) * 0x1p-52 - 1 } }
    mutating func floats(_ count: Int) -> [Float] { doubles(count).map(Float.init) }
    mutating func permutation(_ count: Int) -> [Int] {
        var values = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { values.swapAt(i, Int(next() % UInt64(i + 1))) }
        return values
    }
}
