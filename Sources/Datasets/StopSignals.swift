import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT and SIGTERM as a request to stop cleanly: long jobs (training, packing) check
/// `received` between units of work, finish the current one, leave no partial file, and exit.
public enum StopSignals {
    private static let signal = Atomic<Int32>(0)

    /// The signal received since `install()`, if any.
    public static var received: Int32? {
        let value = signal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Catches SIGINT and SIGTERM. They are unblocked first: a parent (a test runner, a supervisor)
    /// may have passed on a mask that blocks them.
    public static func install() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        for number in [SIGINT, SIGTERM] {
            Glibc.signal(number) { received in StopSignals.signal.store(received, ordering: .relaxed) }
        }
    }
}
