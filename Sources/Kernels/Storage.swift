import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A memory layout chosen by a backend (for example a oneDNN blocked format) that plain Swift code
/// cannot index. Storages carrying one are converted to row-major order on demand, so consecutive
/// backend ops can pass data between them without a reorder.
public protocol OpaqueLayout: AnyObject, Sendable {
    /// Float slots the layout occupies; blocked formats may pad beyond the logical element count.
    var capacity: Int { get }
    /// Whether the layout has slots beyond the elements (channels rounded up to a block).
    var isPadded: Bool { get }
    /// Writes the elements of `source`, stored in this layout, to `destination` in row-major order.
    func reorderToRowMajor(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>)
    /// The number format of the elements in this layout: bf16 layouts hold 16 bits per element.
    var precision: Precision { get }
}

extension OpaqueLayout {
    public var precision: Precision { .fp32 }
}

/// The element memory of a tensor: 64-byte aligned Float32 in host memory, or elements in an
/// accelerator's memory (`deviceMemory`) that only a copy brings to the host.
///
/// A storage is written once, by the kernel that creates it, and is read-only afterwards; tensors
/// share storages freely, which gives them value semantics without copies.
public final class Storage: @unchecked Sendable {
    /// Logical element count (the product of the tensor's shape).
    public let count: Int
    /// `nil` for dense row-major data, otherwise the backend layout of `pointer`.
    public let layout: OpaqueLayout?
    /// The elements when they live on an accelerator; nil for host memory.
    public let deviceMemory: (any DeviceMemory)?
    /// What the values are: under `.bf16` every element is a bfloat16 value, whether the memory
    /// holds 16 bits per element (a bf16 layout) or Float32 slots (row-major host memory, where the
    /// reference backend keeps its rounded activations). docs/model.md §9 says which tensors are.
    public let precision: Precision
    private let hostPointer: UnsafeMutablePointer<Float>?

    /// Where the elements live.
    public var device: Device { deviceMemory?.device ?? .host }

    /// The host memory of the elements, for host kernels; row-major unless `layout` says otherwise.
    /// Device memory has no host address: code outside a device's kernels reads it with `onHost()`.
    public var pointer: UnsafeMutablePointer<Float> {
        guard let hostPointer else {
            fatalError("Storage: \(count) elements live in \(device) memory; read them through onHost()")
        }
        return hostPointer
    }

    /// Uninitialised row-major storage for `count` elements; the caller must write every element
    /// (under `.bf16`, values it has rounded to bf16).
    public init(uninitializedCount count: Int, precision: Precision = .fp32) {
        if count < 0 { fatalError("Storage: negative element count \(count)") }
        self.count = count
        self.layout = nil
        self.deviceMemory = nil
        self.precision = precision
        self.hostPointer = Storage.allocate(count)
    }

    /// Uninitialised storage in a backend layout. A layout that pads (channels rounded up to a
    /// block) starts zeroed: kernels may write only the real elements, and a later kernel that
    /// reads the padding (a convolution multiplies it by zero weights) must not meet NaNs left
    /// in a reused buffer.
    public init(count: Int, layout: OpaqueLayout) {
        self.count = count
        self.layout = layout
        self.deviceMemory = nil
        self.precision = layout.precision
        let pointer = Storage.allocate(layout.capacity)
        if layout.isPadded { pointer.initialize(repeating: 0, count: layout.capacity) }
        self.hostPointer = pointer
    }

    /// `count` elements that a device backend keeps in `memory`.
    public init(count: Int, deviceMemory memory: any DeviceMemory, precision: Precision = .fp32) {
        self.count = count
        self.layout = nil
        self.deviceMemory = memory
        self.precision = precision
        self.hostPointer = nil
    }

    /// Zero-filled row-major storage.
    public convenience init(zeros count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: 0, count: count)
    }

    /// Row-major storage holding a copy of `elements`.
    public convenience init(_ elements: [Float]) {
        self.init(uninitializedCount: elements.count)
        elements.withUnsafeBufferPointer { source in
            guard let base = source.baseAddress else { return }
            pointer.update(from: base, count: elements.count)
        }
    }

    deinit {
        guard let hostPointer else { return }
        let capacity = layout?.capacity ?? count
        BufferPool.shared.release(hostPointer, bytes: max(capacity, 1) * MemoryLayout<Float>.stride)
        StorageStatistics.released(capacity)
    }

    /// The elements as row-major host memory in Float32 slots: this storage when it already is,
    /// otherwise a copy (from a backend layout, or out of a device's memory), with the same precision.
    /// The one way to the host.
    public func onHost() -> Storage {
        if let deviceMemory {
            let copy = Storage(uninitializedCount: count, precision: precision)
            deviceMemory.copyToHost(copy.pointer, count: count)
            return copy
        }
        guard let layout else { return self }
        let plain = Storage(uninitializedCount: count, precision: precision)
        layout.reorderToRowMajor(pointer, plain.pointer)
        return plain
    }

    /// A row-major host storage of these elements that the caller owns and may overwrite: the
    /// conversion itself when one is needed (no second copy), otherwise a copy.
    public func ownedHostCopy() -> Storage {
        if layout != nil || deviceMemory != nil { return onHost() }
        let copy = Storage(uninitializedCount: count, precision: precision)
        copy.pointer.update(from: pointer, count: count)
        return copy
    }

    /// The elements in row-major order.
    public var elements: [Float] {
        let plain = onHost()
        return withExtendedLifetime(plain) { Array(UnsafeBufferPointer(start: plain.pointer, count: count)) }
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        StorageStatistics.allocated(count)
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        return BufferPool.shared.allocate(bytes).bindMemory(to: Float.self, capacity: max(count, 1))
    }
}

/// Tensor memory accounting for profiles: bytes allocated so far, bytes held now, and the most
/// ever held at once. Kernel temporaries outside storages (oneDNN's reorder buffers, scratchpads)
/// are not counted.
public enum StorageStatistics {
    private static let allocatedTotal = Atomic<Int>(0)
    private static let liveNow = Atomic<Int>(0)
    private static let livePeak = Atomic<Int>(0)

    /// Bytes of storage allocated since the process started.
    public static var allocatedBytes: Int { allocatedTotal.load(ordering: .relaxed) }
    /// Bytes of storage alive now.
    public static var liveBytes: Int { liveNow.load(ordering: .relaxed) }
    /// The most bytes of storage alive at once since the last `resetPeak()`.
    public static var peakLiveBytes: Int { livePeak.load(ordering: .relaxed) }

    /// Starts a new peak from what is alive now.
    public static func resetPeak() { livePeak.store(liveNow.load(ordering: .relaxed), ordering: .relaxed) }

    static func allocated(_ count: Int) {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        allocatedTotal.add(bytes, ordering: .relaxed)
        let live = liveNow.add(bytes, ordering: .relaxed).newValue
        var peak = livePeak.load(ordering: .relaxed)
        while live > peak {
            let (exchanged, current) = livePeak.compareExchange(expected: peak, desired: live, ordering: .relaxed)
            if exchanged { break }
            peak = current
        }
    }

    static func released(_ count: Int) {
        liveNow.subtract(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
    }
}
