import Autodiff
import Foundation

/// One line per pass: median and best times and GFLOP/s.
func printPasses(_ passes: [PassTiming]) {
    let width = passes.map(\.name.count).max() ?? 0
    for pass in passes {
        print(
            "  " + pass.name.padding(toLength: width, withPad: " ", startingAt: 0)
                + String(
                    format: "  median %8.3f ms  min %8.3f ms  %7.1f GFLOP/s (median)  %7.1f GFLOP/s (best)",
                    pass.medianSeconds * 1e3, pass.bestSeconds * 1e3, pass.medianGFLOPS, pass.bestGFLOPS))
    }
}

/// Time per kernel and per convolution shape, with the share of the machine's peak each shape reached.
func printProfile(_ profile: EngineProfile, over what: String, seconds: Double, repeats: Int, peakGFLOPS: Double) {
    let total = profile.kernels.reduce(0) { $0 + $1.seconds }
    let mebibyte = Double(1 << 20)
    print(
        "kernel time over \(what) (\(String(format: "%.0f", total * 1e3)) ms in kernels, "
            + "\(String(format: "%.0f", (seconds - total) * 1e3)) ms elsewhere); tensor memory: at most "
            + "\(String(format: "%.0f", Double(profile.peakLiveBytes) / mebibyte)) MiB alive at once:")
    print("  kernel                          time   share    calls   allocated per repeat")
    for entry in profile.kernels.prefix(25) {
        print(
            "  " + entry.kernel.padding(toLength: 28, withPad: " ", startingAt: 0)
                + String(
                    format: "%8.1f ms  %5.1f%%  %6d  %9.1f MiB", entry.seconds * 1e3,
                    100 * entry.seconds / max(total, 1e-9),
                    entry.calls, Double(entry.allocatedBytes) / mebibyte / Double(repeats)))
    }
    print("convolutions by shape (in→out channels, input size, kernel, stride, batch):")
    print("  kernel and shape                                          time   calls   GFLOP/s   of peak")
    for entry in profile.convolutions.prefix(25) {
        let rate = entry.flops / entry.seconds / 1e9
        print(
            "  " + entry.kernel.padding(toLength: 52, withPad: " ", startingAt: 0)
                + String(
                    format: "%8.1f ms  %6d  %8.1f  %6.1f%%", entry.seconds * 1e3, entry.calls, rate,
                    100 * rate / peakGFLOPS))
    }
}

/// The implementations `backend` chose for the convolutions and products run so far.
func printImplementations(_ backend: String) {
    let kinds = Engine.kernelImplementations(of: BackendID(rawValue: backend)).filter {
        $0.key.hasPrefix("convolution") || $0.key.hasPrefix("attention") || $0.key == "matmul"
    }
    for (kind, implementations) in kinds.sorted(by: { $0.key < $1.key }) {
        let chosen = implementations.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }
        print("  \(kind): \(chosen.joined(separator: ", "))")
    }
}

/// The instruction set of `backend`'s kernels here and the CPU's bf16 instructions (what bf16 training
/// would use).
func printInstructionSets(_ backend: String) {
    let bf16 = Engine.bf16Instructions
    let kernels = Engine.kernelInstructionSet(of: BackendID(rawValue: backend)) ?? "plain Swift, for any CPU"
    print(
        "  \(backend) kernels: \(kernels); bf16 instructions: "
            + (bf16.isEmpty ? "none (bf16 would be emulated)" : bf16.joined(separator: ", ")))
}
