import ArgumentParser
import CMachine
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The `sagan` tool: one executable, one subcommand per job.
struct Sagan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sagan",
        abstract: "Self-Attention GANs on the CPU: train, sample, inspect and evaluate.",
        version: "0.1.0",
        subcommands: [TrainCommand.self, GenerateCommand.self, EvalCommand.self, ExportCommand.self, DatasetCommand.self, InspectCommand.self, BenchCommand.self])
}

@main
enum Entry {
    static func main() {
        pinComputeThreads()
        keepFreedBuffersMapped()
        var command: ParsableCommand
        do {
            command = try Sagan.parseAsRoot()
        } catch {
            Sagan.exit(withError: error)        // flag errors: the message and a usage hint, status 64
        }
        do {
            try command.run()
        } catch let error as ValidationError {
            // Problems found while running (a missing file, a checkpoint of another preset): one line, status 64.
            FileHandle.standardError.write(Data("Error: \(error.message)\n".utf8))
            exit(64)
        } catch {
            Sagan.exit(withError: error)
        }
    }

    /// Debian's oneDNN runs its threads on OpenMP, which reads its settings once, when the process
    /// starts. Unpinned threads made some primitives ~15x slower on these machines, so when the user
    /// has not chosen a binding the tool restarts itself once with OMP_PROC_BIND=true.
    static func pinComputeThreads() {
        guard getenv("OMP_PROC_BIND") == nil else { return }
        setenv("OMP_PROC_BIND", "true", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached if the restart failed: carry on unpinned.
    }

    /// A training step frees and reallocates the same large buffers every time. glibc returns
    /// blocks over its mmap threshold to the kernel, and each reuse then pays page faults and
    /// zeroing (about 30,000 faults per blog128 batch-16 step, 7% of its time). Serving them from the
    /// heap and not trimming it keeps them mapped; peak memory stays that of the largest step.
    static func keepFreedBuffersMapped() { sagan_keep_freed_buffers_mapped() }
}
