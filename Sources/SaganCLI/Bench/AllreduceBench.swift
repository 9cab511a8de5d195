import ArgumentParser
import Autodiff
import Collectives
import Foundation
import GAN

/// Allreduce time across the ranks of `mpirun -np N sagan bench allreduce`: the communication cost
/// of data-parallel training, from one float up to a preset's gradients.
struct AllreduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract:
            "Time allreduce (sum of fp32 buffers) across the ranks of an MPI job, up to the size of a preset's G and D "
            + "gradients.")

    @Option(help: "The preset whose G and D parameter count is the largest buffer.") var preset: ModelPreset = .blog128
    @Option(help: "Timed allreduces per size (after two warm-up ones).") var iterations = 20
    @Flag(help: "Print one JSON object per size instead of text.") var json = false

    func validate() throws {
        if iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
    }

    func run() throws {
        guard let group = try MPIProcessGroup.joinIfLaunched() else {
            throw ValidationError(
                "sagan bench allreduce runs under an MPI launcher: mpirun -np 2 sagan bench allreduce")
        }
        defer { group.finalize() }
        let config = try TrainConfig.preset(preset, resolution: preset.defaultResolution, imageChannels: 3)
        var random = RandomGenerator(seed: 0)
        let parameters =
            Generator(config: config.model, generator: &random).parameterCount
            + Discriminator(config: config.model, generator: &random).parameterCount
        let sizes = [1, 256, 16_384, 262_144, 1_048_576, parameters].filter { $0 <= parameters }
        let timings = sizes.map { AllreduceBenchmark.run(group, floats: $0, iterations: iterations) }
        guard group.rank == 0 else { return }
        if !json { print("allreduce (sum, fp32) on \(group.size) ranks; the last size is \(preset.rawValue)'s G + D:") }
        for timing in timings {
            if json {
                print(String(decoding: try JSONEncoder().encode(timing), as: UTF8.self))
                continue
            }
            print(
                String(
                    format: "  %10d floats %9.3f MB  median %9.3f ms  best %9.3f ms  %7.2f GB/s  bus %7.2f GB/s",
                    timing.floats, Double(timing.bytes) / 1e6, timing.medianSeconds * 1e3, timing.bestSeconds * 1e3,
                    timing.algorithmBandwidth / 1e9, timing.busBandwidth / 1e9))
        }
    }
}
