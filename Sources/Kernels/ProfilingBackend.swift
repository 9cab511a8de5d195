import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Wraps a backend and measures every kernel call: count, wall time and bytes of tensor storage
/// allocated per kernel, for `sagan bench --profile`. Results are per process, not per tensor.
public final class ProfilingBackend: Backend {
    public let inner: any Backend
    public var id: BackendID { inner.id }
    private let totals = Mutex<[String: (calls: Int, seconds: Double, bytes: Int)]>([:])
    private let convolutionTotals = Mutex<[String: (calls: Int, seconds: Double, flops: Double)]>([:])

    public init(_ inner: any Backend) { self.inner = inner }

    /// (kernel, calls, seconds, bytes allocated), slowest first.
    public var report: [(kernel: String, calls: Int, seconds: Double, bytes: Int)] {
        totals.withLock { $0.map { ($0.key, $0.value.calls, $0.value.seconds, $0.value.bytes) } }.sorted {
            $0.seconds > $1.seconds
        }
    }

    /// (kernel and convolution shape, calls, seconds, floating-point operations), slowest first: which
    /// convolutions run far from the machine's peak.
    public var convolutionReport: [(kernel: String, calls: Int, seconds: Double, flops: Double)] {
        convolutionTotals.withLock { $0.map { ($0.key, $0.value.calls, $0.value.seconds, $0.value.flops) } }.sorted {
            $0.seconds > $1.seconds
        }
    }

    public func reset() {
        totals.withLock { $0 = [:] }
        convolutionTotals.withLock { $0 = [:] }
    }

    /// `timed`, also recorded under the convolution's shape with its 2·MAC operations.
    private func timedConvolution<R>(_ kernel: String, _ g: Conv2DGeometry, _ body: () -> R) -> R {
        let key =
            "\(kernel) \(g.inChannels)→\(g.outChannels) \(g.inHeight)x\(g.inWidth) "
            + "k\(g.kernelHeight)x\(g.kernelWidth) s\(g.stride) b\(g.batch)"
        return timed(kernel, body) { seconds in
            convolutionTotals.withLock { totals in
                let previous = totals[key] ?? (0, 0, 0)
                totals[key] = (
                    previous.calls + 1, previous.seconds + seconds, previous.flops + 2 * Double(g.multiplyAccumulates)
                )
            }
        }
    }

    /// Runs `body`, adds its time and allocations to `kernel`'s totals and hands the time to `also`.
    private func timed<R>(_ kernel: String, _ body: () -> R, also: (Double) -> Void = { _ in }) -> R {
        var start = timespec()
        var end = timespec()
        let allocatedBefore = StorageStatistics.allocatedBytes
        clock_gettime(CLOCK_MONOTONIC, &start)
        let result = body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        // Process-wide: another thread allocating meanwhile (a batch loader) would count here too.
        let bytes = StorageStatistics.allocatedBytes - allocatedBefore
        let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
        totals.withLock { totals in
            let previous = totals[kernel] ?? (0, 0, 0)
            totals[kernel] = (previous.calls + 1, previous.seconds + seconds, previous.bytes + bytes)
        }
        also(seconds)
        return result
    }

    // Everything forwards to `inner`, the derived operations too: inheriting their defaults would
    // profile the reference kernels instead of what `inner` runs.
    public var device: Device { inner.device }
    public func fromHost(_ storage: Storage) -> Storage { inner.fromHost(storage) }
    public var threadCount: Int? { inner.threadCount }
    public func setThreadCount(_ count: Int) -> Bool { inner.setThreadCount(count) }
    public var instructionSet: String? { inner.instructionSet }
    public var kernelImplementations: [String: [String: Int]] { inner.kernelImplementations }
    public var needsBF16Instructions: Bool { inner.needsBF16Instructions }

    public func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
        timedConvolution("conv forward", g) { inner.conv2dForward(g, input: input, weight: weight, bias: bias) }
    }
    public func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        timedConvolution("conv backward data", g) {
            inner.conv2dBackwardData(g, outputGradient: outputGradient, weight: weight)
        }
    }
    public func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool) -> (
        weight: Storage, bias: Storage?
    ) {
        timedConvolution("conv backward weights", g) {
            inner.conv2dBackwardWeights(g, outputGradient: outputGradient, input: input, withBias: withBias)
        }
    }
    public func batchNormTraining(_ g: BatchNormGeometry, input: Storage, scale: Storage?, shift: Storage?) -> (
        output: Storage, mean: Storage, variance: Storage
    ) {
        timed("batch norm forward") { inner.batchNormTraining(g, input: input, scale: scale, shift: shift) }
    }
    public func batchNormInference(
        _ g: BatchNormGeometry, input: Storage, mean: Storage, variance: Storage, scale: Storage?, shift: Storage?
    ) -> Storage {
        timed("batch norm inference") {
            inner.batchNormInference(g, input: input, mean: mean, variance: variance, scale: scale, shift: shift)
        }
    }
    public func batchNormBackward(
        _ g: BatchNormGeometry, input: Storage, outputGradient: Storage, mean: Storage, variance: Storage,
        scale: Storage?, withParameters: Bool
    ) -> (input: Storage, scale: Storage?, shift: Storage?) {
        timed("batch norm backward") {
            inner.batchNormBackward(
                g, input: input, outputGradient: outputGradient, mean: mean, variance: variance, scale: scale,
                withParameters: withParameters)
        }
    }
    public func unary(_ op: UnaryOperation, _ x: Storage) -> Storage {
        timed("pointwise \(Self.label(op))") { inner.unary(op, x) }
    }
    public func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    {
        timed("pointwise \(Self.label(op)) backward") {
            inner.unaryBackward(op, input: input, output: output, outputGradient: outputGradient)
        }
    }
    public func binary(
        _ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int]
    ) -> Storage {
        timed("binary \(op)") { inner.binary(op, a, aShape, b, bShape, outputShape: outputShape) }
    }
    public func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        timed("reduce \(op)") { inner.reduce(op, x, shape: shape, outputShape: outputShape) }
    }
    public func softmax(_ x: Storage, rows: Int, columns: Int) -> Storage {
        timed("softmax") { inner.softmax(x, rows: rows, columns: columns) }
    }
    public func softmaxBackward(output: Storage, outputGradient: Storage, rows: Int, columns: Int) -> Storage {
        timed("softmax backward") {
            inner.softmaxBackward(output: output, outputGradient: outputGradient, rows: rows, columns: columns)
        }
    }
    public func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage {
        timed("matmul") { inner.matmul(g, a, b) }
    }
    public func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage {
        timed("attention (fused)") { inner.attention(g, queries: queries, keys: keys, values: values) }
    }
    public func attentionBackward(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    )
        -> (queries: Storage, keys: Storage, values: Storage)
    {
        timed("attention (fused) backward") {
            inner.attentionBackward(g, queries: queries, keys: keys, values: values, outputGradient: outputGradient)
        }
    }
    public func spectralNorm(_ g: SpectralNormGeometry, weight: Storage, u: Storage, v: Storage, powerIteration: Bool)
        -> (weight: Storage, sigma: Float, u: Storage, v: Storage)
    {
        timed("spectral norm") { inner.spectralNorm(g, weight: weight, u: u, v: v, powerIteration: powerIteration) }
    }
    public func spectralNormBackward(
        _ g: SpectralNormGeometry, weight: Storage, outputGradient: Storage, u: Storage, v: Storage,
        sigma: Float
    ) -> Storage {
        timed("spectral norm backward") {
            inner.spectralNormBackward(g, weight: weight, outputGradient: outputGradient, u: u, v: v, sigma: sigma)
        }
    }
    public func adamUpdate(_ step: AdamStep, parameter: Storage, gradient: Storage, first: Storage?, second: Storage?)
        -> (parameter: Storage, first: Storage, second: Storage)
    {
        timed("adam") { inner.adamUpdate(step, parameter: parameter, gradient: gradient, first: first, second: second) }
    }
    public func pool2d(_ op: PoolOperation, _ g: Pool2DGeometry, _ x: Storage) -> Storage {
        timed("\(op) pool") { inner.pool2d(op, g, x) }
    }
    public func pool2dBackward(_ op: PoolOperation, _ g: Pool2DGeometry, input: Storage, outputGradient: Storage)
        -> Storage
    {
        timed("\(op) pool backward") { inner.pool2dBackward(op, g, input: input, outputGradient: outputGradient) }
    }
    public func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage {
        timed("permute") { inner.permute(x, shape: shape, permutation: permutation) }
    }
    public func expand(_ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        timed("expand") { inner.expand(x, shape: shape, outputShape: outputShape) }
    }
    public func slice(_ x: Storage, shape: [Int], axis: Int, range: Range<Int>) -> Storage {
        timed("slice") { inner.slice(x, shape: shape, axis: axis, range: range) }
    }
    public func concat(_ parts: [(storage: Storage, shape: [Int])], axis: Int) -> Storage {
        timed("concat") { inner.concat(parts, axis: axis) }
    }

    public func roundedToBF16(_ x: Storage) -> Storage {
        x.precision == .bf16 ? x : timed("round to bf16") { inner.roundedToBF16(x) }
    }

    static func label(_ op: UnaryOperation) -> String {
        switch op {
        case .leakyRelu: return "leakyRelu"
        case .affine: return "affine"
        default: return "\(op)"
        }
    }
}
