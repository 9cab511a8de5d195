import FileFormats
import Kernels

/// An n-dimensional array of Float32 with NCHW convention for images.
///
/// A tensor is a value: its storage is never written after creation, so copies are free and
/// safe. A tensor that takes part in differentiation carries a `TapeNode` linking it to the
/// tensors it was computed from; the graph is freed when the last tensor referring to it goes away.
public struct Tensor: @unchecked Sendable {
    /// Logical dimensions, outermost first; `[]` for a scalar.
    public let shape: [Int]
    /// The elements; shared between tensors that view the same data.
    public let storage: Storage
    /// Where the tensor came from, when it is differentiable.
    let node: TapeNode?

    init(shape: [Int], storage: Storage, node: TapeNode?) {
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// A constant tensor over existing storage.
    public init(shape: [Int], storage: Storage) {
        require(
            ShapeMath.count(shape) == storage.count,
            "Tensor: shape \(shape) needs \(ShapeMath.count(shape)) elements, storage has \(storage.count)")
        self.init(shape: shape, storage: storage, node: nil)
    }

    /// A constant tensor holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        require(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        require(
            ShapeMath.count(shape) == scalars.count,
            "Tensor: shape \(shape) needs \(ShapeMath.count(shape)) elements, got \(scalars.count)")
        self.init(shape: shape, storage: Storage(scalars), node: nil)
    }

    /// A rank-0 tensor.
    public init(_ scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, storage: Storage(zeros: ShapeMath.count(shape)))
    }
    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }
    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        Tensor(shape: shape, scalars: [Float](repeating: value, count: ShapeMath.count(shape)))
    }

    public var rank: Int { shape.count }
    public var count: Int { storage.count }
    /// The elements in row-major order.
    public var scalars: [Float] { storage.elements }
    /// The single element of a one-element tensor.
    public var scalar: Float {
        require(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements")
        let plain = storage.onHost()
        return withExtendedLifetime(plain) { plain.pointer[0] }
    }

    /// True when no element is NaN or infinite (read in place, without copying the elements). The
    /// largest exponent field is all ones exactly then: a reduction without an early exit, which the
    /// compiler vectorises (the trainer checks every gradient each step: blog128's took 4.5 ms).
    public var isFinite: Bool {
        let plain = storage.onHost()
        return withExtendedLifetime(plain) {
            plain.pointer.withMemoryRebound(to: UInt32.self, capacity: count) { words in
                let exponent: UInt32 = 0x7F80_0000
                var largest: UInt32 = 0
                for index in 0..<count { largest = Swift.max(largest, words[index] & exponent) }
                return largest != exponent
            }
        }
    }

    /// True when gradients can flow to this tensor.
    public var requiresGradient: Bool { node != nil }

    /// The same values as a new differentiation leaf: gradients can be asked with respect to it.
    public func trackingGradients() -> Tensor {
        Tensor(shape: shape, storage: storage, node: TapeNode(leafShape: shape))
    }

    /// The same values, cut from the graph: no gradient flows through the result.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage, node: nil) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
