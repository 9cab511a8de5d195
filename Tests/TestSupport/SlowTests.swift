import Foundation
import Testing

extension Tag {
    /// Suites that take long or start other programs: PyTorch parity, the Inception network,
    /// `sagan` and Python as child processes, whole training runs.
    @Tag public static var slow: Self
}

extension Trait where Self == ConditionTrait {
    /// Skips a slow suite when SAGAN_SKIP_SLOW_TESTS is set, as `make test-fast` does; `make test`
    /// runs everything.
    public static var skippedInFastRuns: Self {
        .disabled(
            if: ProcessInfo.processInfo.environment["SAGAN_SKIP_SLOW_TESTS"] != nil,
            "slow (tagged .slow): make test-fast skips it")
    }
}
