import Foundation
import Testing

/// `sagan` as a user runs it, for the tests that need the built executable in a child process.
public enum SaganProcess {
    public static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sagan")
    }

    public struct Outcome: Sendable {
        public let status: Int32
        public let output: String
    }

    /// When a test sends its signal: once the output contains a text, or once a file exists.
    public enum SignalMoment {
        case output(String)
        case file(URL)
    }

    /// Runs `sagan` with its output in a temporary file; with `signal`, sends it at its moment (or
    /// kills the process when that has not come within a minute); with `addressSpaceKiB`, under that
    /// `ulimit -v`; with a `launcher` (mpirun and its flags), as the launcher's program; with a
    /// `signalTarget`, the signal goes to the process it names (a rank) instead. A process still
    /// running after `timeLimit` seconds is killed and recorded as an issue: a test never hangs.
    public static func sagan(
        _ arguments: [String], signal: (Int32, SignalMoment)? = nil, environment: [String: String] = [:],
        addressSpaceKiB: Int? = nil, launcher: [String] = [], signalTarget: (() -> Int32?)? = nil,
        timeLimit: TimeInterval = 900
    ) throws -> Outcome {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("sagan-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        if let addressSpaceKiB {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -v \(addressSpaceKiB); exec \"$@\"", "sh", executable.path] + arguments
        } else if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        try spawningWithStopSignalsUnblocked { try process.run() }
        if let (signalNumber, moment) = signal {
            let deadline = Date().addingTimeInterval(60)
            func hasCome() -> Bool {
                switch moment {
                case .output(let marker): (try? String(contentsOf: log, encoding: .utf8))?.contains(marker) ?? false
                case .file(let url): FileManager.default.fileExists(atPath: url.path)
                }
            }
            while process.isRunning && Date() < deadline {
                if hasCome(), let target = signalTarget.map({ $0() }) ?? process.processIdentifier {
                    kill(target, signalNumber)
                    break
                }
                usleep(50_000)
            }
            if Date() >= deadline { kill(process.processIdentifier, SIGKILL) }
        }
        let limit = Date().addingTimeInterval(timeLimit)
        while process.isRunning && Date() < limit { usleep(50_000) }
        if process.isRunning {
            Issue.record("sagan \(arguments.prefix(1)) still ran after \(Int(timeLimit)) s; killed")
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        try output.close()
        return Outcome(status: process.terminationStatus, output: (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    /// Runs `body` (which starts a process) with SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 unblocked in
    /// this thread: a child inherits the starting thread's signal mask, and the test runner's worker
    /// threads block them. sagan unblocks them itself, but mpirun does not, and would never see the
    /// SIGUSR1 a test sends it.
    public static func spawningWithStopSignalsUnblocked(_ body: () throws -> Void) rethrows {
        var stopSignals = sigset_t()
        var previous = sigset_t()
        sigemptyset(&stopSignals)
        for number in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] { sigaddset(&stopSignals, number) }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try body()
    }

    /// Whether Debian's Fashion-MNIST files are at `path`; records an issue when not.
    public static func fashionMNISTInstalled(at path: String) -> Bool {
        if FileManager.default.fileExists(atPath: path) { return true }
        Issue.record("Debian's dataset-fashion-mnist is not installed (make test installs it)")
        return false
    }
}
