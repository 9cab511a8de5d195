#if canImport(Glibc)
    import Glibc
#endif

/// A progress display: one line redrawn in place on a terminal, plain periodic lines otherwise.
struct ProgressLine {
    let isTerminal: Bool
    private var lastPlainLine = -1.0
    private let plainInterval: Double

    init(plainInterval: Double = 5, isTerminal: Bool = isatty(STDOUT_FILENO) != 0) {
        self.plainInterval = plainInterval
        self.isTerminal = isTerminal
    }

    /// Shows `text`; on a terminal always, otherwise at most every `plainInterval` seconds or when `force`.
    mutating func update(_ text: String, force: Bool = false) {
        if isTerminal {
            print("\r\u{1B}[2K" + text, terminator: "")
            fflush(nil)
        } else if force || monotonicSeconds() - lastPlainLine >= plainInterval {
            print(text)
            fflush(nil)
            lastPlainLine = monotonicSeconds()
        }
    }

    /// Ends the live line so later output starts on a fresh line.
    func finish() { if isTerminal { print("") } }
}

/// Seconds from an arbitrary fixed point, unaffected by clock changes.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
