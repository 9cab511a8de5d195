/// Where a storage's elements live: `.host` (CPU memory, which plain Swift code can address) or the
/// memory of an accelerator that a device backend manages.
public struct Device: Hashable, Sendable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) { self.name = name }

    /// CPU memory: what the reference and oneDNN backends compute in.
    public static let host = Device("host")

    public var description: String { name }
}

/// Elements held in an accelerator's memory. The host reaches them only by copying them out
/// (`Storage.onHost()` calls `copyToHost`); a device backend puts host data on its device itself
/// (`Backend.fromHost`). Nothing else in the engine may touch device bytes.
public protocol DeviceMemory: AnyObject, Sendable {
    var device: Device { get }
    /// Writes the `count` elements, in row-major order, to `destination` in host memory.
    func copyToHost(_ destination: UnsafeMutablePointer<Float>, count: Int)
}
