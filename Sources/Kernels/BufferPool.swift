import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps freed large buffers for the next allocation of the same size. A training step or an
/// inference batch allocates the same sizes every time, and a buffer fresh from the kernel costs
/// page faults and zeroing on first touch (glibc serves blocks over 32 MiB with mmap whatever the
/// settings: a third of the time of an Inception batch went there). Small buffers go to malloc,
/// which keeps them itself.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool(limit: BufferPool.defaultLimit)

    /// Buffers below this go straight to malloc.
    static let minimumBytes = 1 << 20
    /// Sizes are rounded up to whole pages so that near sizes share buffers.
    static let granule = 4096

    /// The most bytes kept idle: half the machine's memory, so the pool never starves the process.
    static var defaultLimit: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size / 2 : 1 << 30
    }

    /// Idle buffers by rounded size, as addresses (plain integers can cross into the lock).
    private struct State {
        var idle: [Int: [Int]] = [:]
        var idleBytes = 0
    }
    private let state = Mutex(State())
    private let limit: Int

    /// A pool that keeps at most `limit` idle bytes (`shared` keeps half the machine's memory).
    public init(limit: Int) { self.limit = limit }

    /// A 64-byte aligned buffer of at least `bytes`; stops the process if memory is exhausted.
    public func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = Self.rounded(bytes)
        if size >= Self.minimumBytes,
            let reused = state.withLock({ state -> Int? in
                guard let address = state.idle[size]?.popLast() else { return nil }
                state.idleBytes -= size
                return address
            })
        {
            return UnsafeMutableRawPointer(bitPattern: reused)!
        }
        var raw: UnsafeMutableRawPointer?
        if posix_memalign(&raw, 64, size) != 0 {
            trim()  // idle buffers of other sizes may be all that stands in the way
            guard posix_memalign(&raw, 64, size) == 0 else { fatalError("out of memory allocating \(bytes) bytes") }
        }
        return raw!
    }

    /// Returns a buffer from `allocate(bytes)` with the same `bytes`.
    public func release(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let size = Self.rounded(bytes)
        let address = Int(bitPattern: pointer)
        let kept =
            size >= Self.minimumBytes
            && state.withLock { state in
                guard state.idleBytes + size <= limit else { return false }
                state.idle[size, default: []].append(address)
                state.idleBytes += size
                return true
            }
        if !kept { free(pointer) }
    }

    /// Frees every idle buffer.
    public func trim() {
        let idle = state.withLock { state in
            defer { state = State() }
            return state.idle.values.flatMap { $0 }
        }
        for address in idle { free(UnsafeMutableRawPointer(bitPattern: address)) }
    }

    /// Bytes held idle for reuse.
    public var idleBytes: Int { state.withLock { $0.idleBytes } }

    static func rounded(_ bytes: Int) -> Int { max(bytes + granule - 1, granule) / granule * granule }
}
