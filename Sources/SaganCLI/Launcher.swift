import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The mpirun that started this rank, when it runs on this machine (rank 0 usually does): its
/// process id, for the hint on how to stop cleanly, and whether its output is a terminal. Open MPI
/// gives every rank a pseudo-terminal whatever mpirun writes to, so a rank's own `isatty` says
/// nothing about where its progress line ends up.
struct MPILauncher {
    let pid: Int32
    let writesToTerminal: Bool

    /// The parent process when it is mpirun, mpiexec or orterun; nil under srun or a remote daemon.
    static func parent() -> MPILauncher? {
        let pid = getppid()
        guard let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
            ["mpirun", "mpiexec", "orterun"].contains(name.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        let output = open("/proc/\(pid)/fd/1", O_WRONLY | O_NOCTTY)
        defer { if output >= 0 { close(output) } }
        return MPILauncher(pid: pid, writesToTerminal: output >= 0 && isatty(output) != 0)
    }
}
