import Kernels

/// The timings of one kernel pass: the median and best of repeated runs after one warm-up.
public struct PassTiming: Sendable, Codable, Equatable {
    public let name: String
    /// Floating-point operations per run (2 per multiply-add).
    public let flops: Double
    public let medianSeconds: Double
    public let bestSeconds: Double

    public var medianGFLOPS: Double { flops / medianSeconds / 1e9 }
    public var bestGFLOPS: Double { flops / bestSeconds / 1e9 }
}

/// What a kernel benchmark timed: the backend, its threads, a description of the shape and each pass.
public struct KernelBenchmarkResult: Sendable, Codable, Equatable {
    public let backend: String
    public let threads: Int?
    public let shape: String
    /// Floating-point operations of the first pass (for the header line).
    public let flopsPerPass: Double
    public let passes: [PassTiming]
}

/// Times single kernels of the backend operations run on now, on random inputs: the numbers behind
/// `sagan bench conv` and `sagan bench attention`. Printed, never asserted: they depend on the machine.
public enum KernelBenchmark {
    /// A convolution's forward, backward-data and backward-weights kernels.
    public static func convolution(
        batch: Int, inChannels: Int, outChannels: Int, size: Int, kernel: Int, stride: Int, padding: Int,
        iterations: Int
    ) throws -> KernelBenchmarkResult {
        var geometry: Conv2DGeometry
        do {
            geometry = try Conv2DGeometry(
                batch: batch, inChannels: inChannels, outChannels: outChannels, inHeight: size, inWidth: size,
                kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding)
        } catch {
            throw EngineError.invalidShape(error.description)
        }
        geometry.precision = EngineContext.precision
        let kernels = EngineContext.backend
        var generator = RandomGenerator(seed: 1)
        let input = Tensor.randomNormal(geometry.inputShape, generator: &generator).storage  // (B, Cin, S, S)
        let weight = Tensor.randomNormal(geometry.weightShape, generator: &generator).storage  // (Cout, Cin, K, K)
        // (B, Cout, S', S')
        let outputGradient = Tensor.randomNormal(geometry.outputShape, generator: &generator).storage
        let flops = 2 * Double(geometry.multiplyAccumulates)
        let passes = time(
            [
                ("forward", flops, { _ = kernels.conv2dForward(geometry, input: input, weight: weight, bias: nil) }),
                (
                    "backward data", flops,
                    { _ = kernels.conv2dBackwardData(geometry, outputGradient: outputGradient, weight: weight) }
                ),
                (
                    "backward weights", flops,
                    {
                        _ = kernels.conv2dBackwardWeights(
                            geometry, outputGradient: outputGradient, input: input, withBias: false)
                    }
                ),
            ], iterations: iterations)
        return KernelBenchmarkResult(
            backend: kernels.name, threads: Engine.threadCount, shape: "\(geometry)", flopsPerPass: flops,
            passes: passes)
    }

    /// The fused attention kernel's forward and backward passes on a `size`x`size` map of
    /// `channels` value channels (queries and keys get an eighth).
    public static func attention(batch: Int, channels: Int, size: Int, iterations: Int) throws -> KernelBenchmarkResult
    {
        let positions = size * size
        var geometry: AttentionGeometry
        do {
            geometry = try AttentionGeometry(
                batch: batch, keyChannels: channels / 8, valueChannels: channels, queries: positions, keys: positions)
        } catch {
            throw EngineError.invalidShape(error.description)
        }
        geometry.precision = EngineContext.precision
        let kernels = EngineContext.backend
        var generator = RandomGenerator(seed: 1)
        // (B, C/8, N)
        let queries = Tensor.randomNormal([batch, geometry.keyChannels, positions], generator: &generator).storage
        // (B, C/8, N)
        let keys = Tensor.randomNormal([batch, geometry.keyChannels, positions], generator: &generator).storage
        let values = Tensor.randomNormal([batch, channels, positions], generator: &generator).storage  // (B, C, N)
        // (B, C, N)
        let outputGradient = Tensor.randomNormal([batch, channels, positions], generator: &generator).storage
        // Multiply-adds per score: forward q·k and P·v; backward recomputes q·k and adds dP, dq, dk, dv.
        let scores = Double(batch * positions * positions)
        let forwardFlops = 2 * scores * Double(geometry.keyChannels + channels)
        let backwardFlops = 2 * scores * Double(3 * geometry.keyChannels + 2 * channels)
        let passes = time(
            [
                (
                    "forward", forwardFlops,
                    { _ = kernels.attention(geometry, queries: queries, keys: keys, values: values) }
                ),
                (
                    "backward", backwardFlops,
                    {
                        _ = kernels.attentionBackward(
                            geometry, queries: queries, keys: keys, values: values, outputGradient: outputGradient)
                    }
                ),
            ], iterations: iterations)
        let shape =
            "attention batch \(batch), \(positions) queries and keys, \(geometry.keyChannels)/\(channels) channels, "
            + "\(geometry.precision)"
        return KernelBenchmarkResult(
            backend: kernels.name, threads: Engine.threadCount, shape: shape, flopsPerPass: forwardFlops, passes: passes
        )
    }

    /// Runs each pass once to warm up, then `iterations` times.
    static func time(_ passes: [(name: String, flops: Double, run: () -> Void)], iterations: Int) -> [PassTiming] {
        passes.map { name, flops, pass in
            pass()
            let clock = ContinuousClock()
            let times = (0..<max(iterations, 1)).map { _ in clock.measure(pass).seconds }.sorted()
            return PassTiming(name: name, flops: flops, medianSeconds: times[times.count / 2], bestSeconds: times[0])
        }
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) * 1e-18
    }
}
