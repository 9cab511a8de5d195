import ArgumentParser

/// Throughput measurements on this machine. Numbers depend on the machine and its load, so they
/// are printed, never asserted by tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure throughput on this machine.",
        subcommands: [
            TrainBench.self, ConvolutionBench.self, AttentionBench.self, InceptionBench.self, LoaderBench.self,
            AllreduceBench.self, PrecisionRecallBench.self,
        ],
        defaultSubcommand: TrainBench.self)
}
