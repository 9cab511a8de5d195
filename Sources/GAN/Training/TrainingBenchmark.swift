import Autodiff
import Datasets

/// What to time: full training iterations (D step + G step) of a preset on synthetic data.
public struct TrainingBenchmarkOptions: Sendable {
    public var preset: ModelPreset = .blog128
    public var batchSize = 16
    public var imageChannels = 3
    /// Timed iterations, after `warmup` untimed ones (primitive creation, allocation).
    public var iterations = 5
    public var warmup = 2
    /// The machine's peak in GFLOP/s; nil: measured with an FMA loop before any engine work.
    public var peakGFLOPS: Double?
    /// Also time every kernel (`EngineProfile`).
    public var profile = false
    /// The ranks of a data-parallel job (`batchSize` is then the global batch, divided among them,
    /// with synchronised batch norm); nil: one process.
    public var group: (any ProcessGroup)?

    public init() {}
}

/// The result of `TrainingBenchmark.run`: time per iteration, achieved and peak GFLOP/s, memory.
public struct TrainingBenchmarkResult: Sendable, Encodable {
    public let preset: String
    public let batch: Int
    /// Threads per rank.
    public let threads: Int
    /// Processes of the data-parallel job (1 without MPI).
    public let ranks: Int
    public let iterations: Int
    public let backend: String
    /// "fp32" or "bf16".
    public let precision: String
    public let msMedian: Double
    public let msMin: Double
    public let imagesPerSecond: Double
    public let gflopPerIteration: Double
    public let gflops: Double
    public let peakGFLOPS: Double
    public let percentOfPeak: Double
    /// The bf16 dot-product peak and the share of it reached, for bf16 runs on CPUs with AVX512_BF16.
    public let bf16PeakGFLOPS: Double?
    public let percentOfBF16Peak: Double?
    public let peakRSSMiB: Int
    /// Median milliseconds per iteration spent in collectives (gradient allreduce, synchronised batch
    /// norm), waiting for the slowest rank included, and how many collectives an iteration calls.
    public let msCollectives: Double
    public let collectivesPerIteration: Int
    /// How the peak was found: "avx512", "avx2" or "scalar" for a measured FMA loop, or "given".
    public let peakSource: String
    /// Kernel times over the timed iterations, when asked for. This and the fields below are not
    /// part of the JSON line.
    public let profile: EngineProfile?
    /// Seconds of each timed iteration, in order.
    public let iterationSeconds: [Double]

    enum CodingKeys: String, CodingKey {
        case preset, batch, threads, ranks, iterations, backend, precision
        case msCollectives = "ms_collectives"
        case collectivesPerIteration = "collectives_per_iteration"
        case msMedian = "ms_median"
        case msMin = "ms_min"
        case imagesPerSecond = "images_per_second"
        case gflopPerIteration = "gflop_per_iteration"
        case gflops
        case peakGFLOPS = "peak_gflops"
        case percentOfPeak = "percent_of_peak"
        case bf16PeakGFLOPS = "bf16_peak_gflops"
        case percentOfBF16Peak = "percent_of_bf16_peak"
        case peakRSSMiB = "peak_rss_mib"
    }

    init(
        options: TrainingBenchmarkOptions, threads: Int, seconds: [Double], collectiveSeconds: [Double],
        collectivesPerIteration: Int,
        flops: Double, peak: Double, bf16Peak: Double?, peakSource: String, profile: EngineProfile?
    ) {
        let sorted = seconds.sorted()
        let median = sorted[sorted.count / 2]
        preset = options.preset.rawValue
        batch = options.batchSize
        self.threads = threads
        ranks = options.group?.size ?? 1
        msCollectives = collectiveSeconds.sorted()[collectiveSeconds.count / 2] * 1e3
        self.collectivesPerIteration = collectivesPerIteration
        iterations = seconds.count
        backend = Engine.backendName
        precision = Engine.precision.rawValue
        msMedian = median * 1e3
        msMin = sorted[0] * 1e3
        imagesPerSecond = Double(options.batchSize) / median
        gflopPerIteration = flops / 1e9
        gflops = flops / median / 1e9
        peakGFLOPS = peak
        self.peakSource = peakSource
        percentOfPeak = 100 * gflops / (peak * Double(ranks))
        bf16PeakGFLOPS = bf16Peak
        let rankCount = Double(options.group?.size ?? 1)
        percentOfBF16Peak = bf16Peak.map { 100 * flops / median / 1e9 / ($0 * rankCount) }
        peakRSSMiB = Engine.peakResidentMegabytes
        self.profile = profile
        iterationSeconds = seconds
    }
}

/// Times training iterations and relates them to the machine's peak through the FLOP model.
public enum TrainingBenchmark {
    /// Floating-point operations of one training iteration at `batch`: G runs forward twice (for D's
    /// step and its own) and D three times (real, fake, and fake again for G). Backward costs twice
    /// the forward where weight gradients are needed (G; D in its own step on real and fake) and
    /// once for D's data-only pass in G's step: 2·batch·(4·G MACs + 8·D MACs).
    public static func flopsPerIteration(generatorMACs: Int, discriminatorMACs: Int, batch: Int) -> Double {
        2.0 * Double(batch) * Double(4 * generatorMACs + 8 * discriminatorMACs)
    }

    /// Runs the benchmark on the configured engine; under a group, every rank calls it, and the
    /// peaks are per rank (each rank's share of the machine).
    public static func run(_ options: TrainingBenchmarkOptions) throws -> TrainingBenchmarkResult {
        let threads = Engine.threadCount ?? 1
        // Measured before any engine work: oneDNN's idle OpenMP threads would take cores from the loop.
        let peak = options.peakGFLOPS ?? Engine.measurePeakGFLOPS(threads: threads)
        let peakSource = options.peakGFLOPS == nil ? Engine.peakInstructionSet : "given"
        let bf16Peak = Engine.precision == .bf16 ? Engine.measureBF16PeakGFLOPS(threads: threads) : nil
        var config = try TrainConfig.preset(
            options.preset, resolution: options.preset.defaultResolution, imageChannels: options.imageChannels)
        config.batchSize = options.batchSize
        config.sampleCount = 1
        try config.validate()
        let trainer = Trainer(config: config)
        let group = options.group.map(TimedProcessGroup.init)
        if let group { try trainer.distribute(over: group, synchronizedBatchNorm: true) }
        var random = RandomGenerator(seed: 9)
        let side = config.model.resolution
        let images = Tensor.randomUniform(  // (B, C, R, R)
            [options.batchSize, options.imageChannels, side, side], low: -1, high: 1, generator: &random)
        let synthetic = Batch(images: images, labels: nil, cursor: LoaderCursor())
        let profiler = options.profile ? EngineProfiler() : nil
        let clock = ContinuousClock()
        var seconds: [Double] = []
        var collectiveSeconds: [Double] = []
        var collectiveCounts: [Int] = []
        for iteration in 0..<(options.warmup + options.iterations) {
            if iteration == options.warmup { profiler?.reset() }
            let (secondsBefore, countBefore) = (group?.seconds ?? 0, group?.count ?? 0)
            let elapsed = try clock.measure {
                if let profiler {
                    _ = try profiler.run { try trainer.trainStep { synthetic } }
                } else {
                    _ = try trainer.trainStep { synthetic }
                }
            }
            if iteration >= options.warmup {
                seconds.append(elapsed.seconds)
                collectiveSeconds.append((group?.seconds ?? 0) - secondsBefore)
                collectiveCounts.append((group?.count ?? 0) - countBefore)
            }
        }
        let flops = flopsPerIteration(
            generatorMACs: trainer.generator.summary().reduce(0) { $0 + $1.multiplyAccumulates },
            discriminatorMACs: trainer.discriminator.summary().reduce(0) { $0 + $1.multiplyAccumulates },
            batch: options.batchSize)
        return TrainingBenchmarkResult(
            options: options, threads: threads, seconds: seconds, collectiveSeconds: collectiveSeconds,
            collectivesPerIteration: collectiveCounts.max() ?? 0, flops: flops,
            peak: peak, bf16Peak: bf16Peak,
            peakSource: peakSource, profile: profiler?.profile)
    }
}
