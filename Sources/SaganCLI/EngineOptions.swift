import ArgumentParser
import Autodiff

/// The engine flags every computing command shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for oneDNN (default: all cores).") var threads: Int?
    @Option(help: "Backend: onednn or reference, the plain-Swift oracle (default: the fastest here).") var backend:
        String?
    @Option(help: "Precision of convolutions, linear layers and attention: fp32, or bf16 (needs AVX512_BF16 or AMX).")
    var precision: Precision = .fp32

    func validate() throws {
        if let threads, threads < 1 || threads > Engine.maximumThreads {
            throw ValidationError("--\(EngineError.invalidThreadCount(threads).description)")
        }
    }

    var configuration: EngineConfiguration {
        EngineConfiguration(backend: backend.map(BackendID.init(rawValue:)), threads: threads, precision: precision)
    }

    /// Runs `body` on the engine these flags configure.
    func run<R>(_ body: () throws -> R) throws -> R {
        do {
            return try Engine.run(configuration, body)
        } catch let error as EngineError {
            if case .unknownBackend = error { throw ValidationError("--backend: \(error.description)") }
            if case .bf16Unsupported = error { throw ValidationError("--precision: \(error.description)") }
            throw ValidationError(error.description)
        }
    }
}

extension Precision: ExpressibleByArgument {}
