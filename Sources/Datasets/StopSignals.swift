import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 as a request to stop cleanly: long jobs (training, packing)
/// check `received` between units of work, finish the current one, leave no partial file, and exit.
/// Open MPI's mpirun passes SIGUSR1 and SIGUSR2 on to every rank, but treats SIGINT and SIGTERM as
/// an abort (it kills the ranks a second later), so the USR signals are how a distributed run is
/// stopped cleanly.
///
/// The signals are blocked in the thread that installs this, and so in every thread it starts
/// afterwards (OpenMP's workers, the batch loader), and taken by one thread that waits for them
/// with `sigwait`. No computing thread is ever interrupted: a SIGTERM that landed in a worker
/// while it ran a oneDNN kernel was followed, about once in a hundred stops, by a corrupted heap
/// (glibc's "corrupted size vs. prev_size", exit 134, no checkpoint saved).
public enum StopSignals {
    private static let signal = Atomic<Int32>(0)
    private static let installed = Atomic<Bool>(false)
    static let numbers = [SIGINT, SIGTERM, SIGUSR1, SIGUSR2]

    /// The signal received since `install()`, if any.
    public static var received: Int32? {
        let value = signal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Blocks the four signals in the calling thread, so that one arriving before `install()` (while
    /// a command starts up) waits for it instead of killing the process. Call first thing in main,
    /// before any thread starts; commands that do not stop cleanly call `release()`.
    public static func hold() {
        var signals = set()
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Undoes `hold()` for a command that does not install: the signals act as they do by default
    /// (one that arrived meanwhile acts now).
    public static func release() {
        var signals = set()
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    }

    static func set() -> sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in numbers { sigaddset(&signals, number) }
        return signals
    }

    /// Takes the four signals from now on (once per process; later calls do nothing).
    public static func install() {
        guard installed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        var signals = set()
        // A thread that existed before and has the signals unblocked still records them, instead
        // of dying by their default action; the handler does nothing else.
        for number in numbers {
            Glibc.signal(number) { received in StopSignals.signal.store(received, ordering: .relaxed) }
        }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let waiter = Thread {
            var signals = StopSignals.set()
            while true {
                var number: Int32 = 0
                if sigwait(&signals, &number) == 0 { StopSignals.signal.store(number, ordering: .relaxed) }
            }
        }
        waiter.name = "sagan stop signals"
        waiter.start()
    }
}
