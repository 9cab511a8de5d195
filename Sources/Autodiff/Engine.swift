import CMachine
import FileFormats
import Foundation
import Kernels

#if canImport(Glibc)
    import Glibc
#endif

/// How the engine computes: which backend, how many threads, in what precision. Commands build one
/// from their flags (`EngineOptions`); a Swift user builds one directly. nil fields keep the defaults.
public struct EngineConfiguration: Sendable, Equatable {
    /// Which backend computes (`.oneDNN`, `.reference` or one registered with `BackendRegistry`);
    /// nil: the fastest backend available here.
    public var backend: BackendID?
    /// Threads for the backends' kernels; nil: all cores.
    public var threads: Int?
    /// The format of convolutions, linear layers and attention (see `Precision`).
    public var precision: Precision

    public init(backend: BackendID? = nil, threads: Int? = nil, precision: Precision = .fp32) {
        self.backend = backend
        self.threads = threads
        self.precision = precision
    }
}

/// A configuration the engine cannot honour; the message names the setting.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case unknownBackend(_ id: BackendID, available: [BackendID])
    case invalidThreadCount(_ count: Int)
    /// A benchmark or kernel shape that does not make sense (the geometry check's message).
    case invalidShape(_ message: String)
    /// bf16 asked of a backend that would emulate it on this CPU (oneDNN without bf16 instructions).
    case bf16Unsupported(instructionSet: String)

    public var description: String {
        switch self {
        case .unknownBackend(let name, let available):
            return
                "backend \(name) is not available here; available: \(available.map(\.rawValue).joined(separator: ", "))"
        case .invalidThreadCount(let count):
            return
                "threads must be 1 to \(Engine.maximumThreads) (\(Engine.threadsPerCPU) per CPU this process may use), "
                + "got \(count)"
        case .invalidShape(let message): return message
        case .bf16Unsupported(let instructionSet):
            let fallback =
                instructionSet.hasPrefix("avx512")
                ? "oneDNN would emulate bf16 more slowly than fp32 runs" : "oneDNN has no bf16 kernels for it"
            return "precision bf16 needs a CPU with AVX512_BF16 or AMX-BF16 instructions; this one has neither "
                + "(oneDNN runs \(instructionSet) here), and \(fallback): use \(Setting.precision) fp32"
        }
    }
}

/// The one place where the engine is configured and where facts about it are read. Layers above
/// Autodiff use this instead of reaching into the kernels.
public enum Engine {
    /// The backends this process can run, the reference first.
    public static var availableBackends: [BackendID] { BackendRegistry.available.map(\.id) }

    /// The backend operations run on now.
    public static var backendName: String { EngineContext.backend.name }

    /// The threads the current backend's kernels use, if it runs threads of its own.
    public static var threadCount: Int? { EngineContext.backend.threadCount }

    /// More threads than CPUs only wait for each other: beyond a few per CPU a step takes minutes,
    /// and OpenMP fails outright long before 100,000 (a segfault in libgomp).
    public static let threadsPerCPU = 4

    /// The most threads a command may ask for: `threadsPerCPU` per CPU this process may run on.
    public static var maximumThreads: Int { threadsPerCPU * max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Runs `body` on the configured backend after setting every backend's thread count. The thread
    /// count is process-wide (OpenMP's); the backend holds for `body` only.
    public static func run<R>(_ configuration: EngineConfiguration, _ body: () throws -> R) throws -> R {
        if let threads = configuration.threads {
            guard threads >= 1, threads <= maximumThreads else { throw EngineError.invalidThreadCount(threads) }
            for backend in BackendRegistry.available { backend.setThreadCount(threads) }
        }
        var backend = EngineContext.backend
        if let id = configuration.backend {
            guard let named = BackendRegistry.backend(id) else {
                throw EngineError.unknownBackend(id, available: availableBackends)
            }
            backend = named
        }
        try checkPrecision(configuration.precision, backend: backend.id, bf16Instructions: bf16Instructions)
        return try withBackend(backend) { try withPrecision(configuration.precision, body) }
    }

    /// The precision the engine runs in now.
    public static var precision: Precision { EngineContext.precision }

    /// Refuses bf16 where the backend needs bf16 instructions and the CPU has none (oneDNN would
    /// emulate them, slower than fp32). The reference backend rounds in software and runs bf16
    /// anywhere (it is the oracle).
    public static func checkPrecision(_ precision: Precision, backend id: BackendID, bf16Instructions: [String]) throws
    {
        guard precision == .bf16, bf16Instructions.isEmpty, let backend = BackendRegistry.backend(id),
            backend.needsBF16Instructions
        else { return }
        throw EngineError.bf16Unsupported(instructionSet: backend.instructionSet ?? "an unknown instruction set")
    }

    /// GFLOP/s of independent FMA chains on `threads` threads for about `seconds`: the machine's
    /// fp32 peak that benchmarks report percentages of. Measure it before any oneDNN work: its
    /// OpenMP threads spin between parallel regions and would take cores from the loop.
    public static func measurePeakGFLOPS(threads: Int, seconds: Double = 0.5) -> Double {
        sagan_fma_peak_gflops(Int32(threads), seconds)
    }

    /// GFLOP/s of independent bf16 dot-product chains (`vdpbf16ps`) on `threads` threads: the bf16
    /// peak that bf16 benchmarks also report a percentage of; nil without AVX512_BF16. Measure it
    /// before any oneDNN work, as the fp32 peak.
    public static func measureBF16PeakGFLOPS(threads: Int, seconds: Double = 0.5) -> Double? {
        let peak = sagan_bf16_peak_gflops(Int32(threads), seconds)
        return peak > 0 ? peak : nil
    }

    /// The implementations a backend (default: the current one) chose for the kernels run so far, by kind
    /// of kernel ("convolution forward": ["jit_bf16:avx512_core_bf16": 12]); empty for backends that do not
    /// choose.
    public static func kernelImplementations(of id: BackendID? = nil) -> [String: [String: Int]] {
        backend(id)?.kernelImplementations ?? [:]
    }

    /// The instruction set a backend's kernels (default: the current one's) use here ("avx512_core_bf16",
    /// …), if it compiles for the CPU (oneDNN does; the reference backend does not).
    public static func kernelInstructionSet(of id: BackendID? = nil) -> String? { backend(id)?.instructionSet }

    private static func backend(_ id: BackendID?) -> (any Backend)? {
        id.map(BackendRegistry.backend) ?? EngineContext.backend
    }

    /// The bf16 instructions this CPU (and its OS) offers: "avx512_bf16" (dot products) and
    /// "amx_bf16" (tiles). Without either, bf16 would be emulated.
    public static var bf16Instructions: [String] {
        (sagan_cpu_has_avx512_bf16() != 0 ? ["avx512_bf16"] : []) + (sagan_cpu_has_amx_bf16() != 0 ? ["amx_bf16"] : [])
    }

    /// The vector instructions the peak measurement used: "avx512", "avx2" or "scalar".
    public static var peakInstructionSet: String { String(cString: sagan_fma_instruction_set()) }

    /// Restarts this process once with OMP_PROC_BIND=true unless the user chose a binding. Debian's
    /// oneDNN runs its threads on OpenMP, which reads its settings once, when the process starts;
    /// unpinned threads made some primitives about 15x slower on these machines. The CPUs the process
    /// started with (a launcher's binding) are remembered for threads of our own. Call it first thing
    /// in `main`, before any thread starts; it returns only if no restart was needed (or it failed).
    public static func restartWithPinnedThreads() {
        guard getenv("OMP_PROC_BIND") == nil else { return }
        sagan_remember_process_cpus()
        setenv("OMP_PROC_BIND", "true", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// Keeps large freed buffers mapped (glibc serves them from the heap and never trims it). A
    /// training step frees and reallocates the same buffers every time; returned to the kernel,
    /// each reuse pays page faults and zeroing (about 7% of a blog128 batch-16 step).
    public static func keepFreedBuffersMapped() { sagan_keep_freed_buffers_mapped() }

    /// The peak resident set size of this process in MiB (VmHWM).
    public static var peakResidentMegabytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}

extension Engine {
    /// The most tensor storage alive at once while `body` ran, in bytes (kernel scratch memory
    /// outside tensors not counted). Process-wide: other threads' tensors count too.
    public static func peakTensorBytes<R>(of body: () throws -> R) rethrows -> (result: R, bytes: Int) {
        StorageStatistics.resetPeak()
        let result = try body()
        return (result, StorageStatistics.peakLiveBytes)
    }

    /// Memory this process may still take, in bytes: the smaller of the system's available memory
    /// (MemAvailable) and what the address-space limit (`ulimit -v`) leaves; nil if unknown.
    public static var availableMemoryBytes: Int? {
        var available: Int?
        if let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        {
            available = kib * 1024
        }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
            let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        {
            let left = max(0, Int(clamping: limit.rlim_cur) - kib * 1024)
            available = min(available ?? left, left)
        }
        return available
    }
}
