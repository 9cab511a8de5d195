import Autodiff
import Foundation
import Testing

/// The engine configuration API and the kernel benchmarks built on it.
@Suite("Engine")
struct EngineTests {
    @Test func aConfigurationChoosesTheBackendForItsBodyOnly() throws {
        let outside = Engine.backendName
        let inside = try Engine.run(EngineConfiguration(backend: "reference")) { Engine.backendName }
        #expect(inside == "reference" && Engine.backendName == outside)
        #expect(Engine.availableBackends.first == "reference")
        #expect(throws: EngineError.unknownBackend("cuda", available: Engine.availableBackends)) {
            try Engine.run(EngineConfiguration(backend: "cuda")) {}
        }
        #expect(throws: EngineError.invalidThreadCount(0)) { try Engine.run(EngineConfiguration(threads: 0)) {} }
    }

    @Test func aConfigurationSetsThePrecisionForItsBodyOnly() throws {
        #expect(Engine.precision == .fp32)
        let inside = try Engine.run(EngineConfiguration(backend: "reference", precision: .bf16)) { Engine.precision }
        #expect(inside == .bf16 && Engine.precision == .fp32)
    }

    /// Where the CPU has no bf16 instructions, oneDNN would emulate them: bf16 is refused there, with
    /// a message saying what is missing; the reference backend (software rounding) runs it anywhere.
    @Test func bf16IsRefusedOnOneDNNWithoutBF16Instructions() throws {
        let onednn = try #require(Engine.availableBackends.first { $0 == .oneDNN })
        #expect(throws: EngineError.self) {
            try Engine.checkPrecision(.bf16, backend: onednn, bf16Instructions: [])
        }
        let avx512 = EngineError.bf16Unsupported(instructionSet: "avx512_core").description
        #expect(avx512.contains("AVX512_BF16") && avx512.contains("AMX") && avx512.contains("emulate"), "\(avx512)")
        let avx2 = EngineError.bf16Unsupported(instructionSet: "avx2").description
        #expect(avx2.contains("runs avx2 here") && avx2.contains("no bf16 kernels"), "\(avx2)")
        try Engine.checkPrecision(.bf16, backend: onednn, bf16Instructions: ["avx512_bf16"])
        try Engine.checkPrecision(.bf16, backend: "reference", bf16Instructions: [])
        try Engine.checkPrecision(.fp32, backend: onednn, bf16Instructions: [])
        if Engine.bf16Instructions.isEmpty {
            #expect(throws: EngineError.self) { try Engine.run(EngineConfiguration(precision: .bf16)) {} }
        } else {
            #expect(try Engine.run(EngineConfiguration(precision: .bf16)) { Engine.precision } == .bf16)
        }
    }

    @Test func kernelBenchmarksTimeEachPassWithItsFlops() throws {
        let result = try Engine.run(EngineConfiguration(backend: "reference")) {
            try KernelBenchmark.convolution(
                batch: 1, inChannels: 2, outChannels: 3, size: 5, kernel: 3, stride: 1, padding: 1,
                iterations: 2)
        }
        #expect(result.backend == "reference")
        #expect(result.passes.map(\.name) == ["forward", "backward data", "backward weights"])
        // 2 FLOPs per multiply-add: 25 outputs x 3 channels x (2 x 3 x 3) taps.
        #expect(result.passes.allSatisfy { $0.flops == 2 * 25 * 3 * 18 && $0.bestSeconds <= $0.medianSeconds })
        #expect(throws: EngineError.self) {
            try KernelBenchmark.convolution(
                batch: 1, inChannels: 2, outChannels: 3, size: 2, kernel: 5, stride: 1, padding: 0,
                iterations: 1)
        }
        let attention = try Engine.run(EngineConfiguration(backend: "reference")) {
            try KernelBenchmark.attention(batch: 1, channels: 8, size: 2, iterations: 1)
        }
        #expect(attention.passes.map(\.name) == ["forward", "backward"] && attention.flopsPerPass == 2 * 16 * 9)
    }

    @Test func aProfilerCountsTheKernelsOfWhatItRuns() throws {
        let profiler = EngineProfiler()
        _ = profiler.run { (Tensor.ones([4, 4]) * 2).sum().scalar }
        let profile = profiler.profile
        #expect(!profile.kernels.isEmpty && profile.kernels.allSatisfy { $0.calls >= 1 })
        profiler.reset()
        #expect(profiler.profile.kernels.isEmpty)
    }

    /// The bf16 instructions found through CPUID agree with the kernel's view in /proc/cpuinfo, and
    /// oneDNN picks its bf16 kernels exactly when the CPU has them.
    @Test func bf16InstructionsMatchTheCPU() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? []
        )
        #expect(Engine.bf16Instructions.contains("avx512_bf16") == flags.contains("avx512_bf16"))
        #expect(
            Engine.bf16Instructions.contains("amx_bf16") == (flags.contains("amx_bf16") && flags.contains("amx_tile")))
        if let isa = Engine.kernelInstructionSet(of: .oneDNN) {
            #expect((isa.contains("bf16") || isa.contains("amx")) == !Engine.bf16Instructions.isEmpty, "\(isa)")
        }
    }
}
