import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 as a request to stop cleanly: long jobs (training, packing)
/// check `received` between units of work, finish the current one, leave no partial file, and exit.
/// Open MPI's mpirun passes SIGUSR1 and SIGUSR2 on to every rank, but treats SIGINT and SIGTERM as
/// an abort (it kills the ranks a second later), so the USR signals are how a distributed run is
/// stopped cleanly.
public enum StopSignals {
    private static let signal = Atomic<Int32>(0)

    /// The signal received since `install()`, if any.
    public static var received: Int32? {
        let value = signal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Catches the four signals. They are unblocked first: a parent (a test runner, a supervisor)
    /// may have passed on a mask that blocks them.
    public static func install() {
        var signals = sigset_t()
        sigemptyset(&signals)
        let numbers = [SIGINT, SIGTERM, SIGUSR1, SIGUSR2]
        for number in numbers { sigaddset(&signals, number) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        for number in numbers {
            Glibc.signal(number) { received in StopSignals.signal.store(received, ordering: .relaxed) }
        }
    }
}
