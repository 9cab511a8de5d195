import ArgumentParser
import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import GAN

#if canImport(Glibc)
    import Glibc
#endif

/// A command that finishes its unit of work and saves it when stopped by a signal (`StopSignals`).
protocol StopsOnSignals {}

/// The `sagan` tool: one executable, one subcommand per job.
struct Sagan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sagan",
        abstract: "Self-Attention GANs on the CPU: train, sample, inspect and evaluate.",
        version: ProjectInfo.version,
        subcommands: [
            TrainCommand.self, GenerateCommand.self, EvalCommand.self, ExportCommand.self, DatasetCommand.self,
            InspectCommand.self, BenchCommand.self, StudioCommand.self,
        ])
}

@main
enum Entry {
    static func main() {
        // A stop signal during start-up waits for the command that takes it (training, packing);
        // the mask and the pending signal survive the restart below.
        StopSignals.hold()
        Engine.restartWithPinnedThreads()
        Engine.keepFreedBuffersMapped()
        Setting.useNames(flagNames)  // library messages name settings by the flags that set them
        var command: ParsableCommand
        do {
            command = try Sagan.parseAsRoot()
        } catch {
            Sagan.exit(withError: error)  // flag errors: the message and a usage hint, status 64
        }
        if !(command is StopsOnSignals) { StopSignals.release() }
        do {
            try command.run()
        } catch {
            // Bad input found while running (a missing file, a checkpoint of another preset): one line, status 64.
            guard let message = badInputMessage(error) else { Sagan.exit(withError: error) }
            FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
            exit(64)
        }
    }

    /// The message of an error that bad input caused, or nil for other failures.
    static func badInputMessage(_ error: any Error) -> String? {
        switch error {
        case let error as ValidationError: return error.message
        case let error as ConfigurationError: return error.description
        case let error as TrainingRunError: return error.description
        case let error as TrainingError: return error.description
        case let error as EvaluationError: return error.description
        case let error as SafeTensorsError: return error.description
        case let error as DataError: return error.description
        case let error as EngineError: return error.description
        case let error as FileWriteError: return error.description
        default: return nil
        }
    }
}
