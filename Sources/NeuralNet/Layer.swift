import Autodiff

/// A module that maps one tensor to another and can state its cost without running.
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
    /// The output shape for an input of shape `input` (batch included).
    func outputShape(forInput input: [Int]) -> [Int]
    /// Multiply-accumulates of one forward pass over an input of shape `input`.
    func multiplyAccumulates(forInput input: [Int]) -> Int
    /// What the layer is, with its key settings, for model summaries: "SN Conv 4x4/2 → BN → LeakyReLU(0.1)".
    var summary: String { get }
}

extension Layer {
    public func outputShape(forInput input: [Int]) -> [Int] { input }
    public func multiplyAccumulates(forInput input: [Int]) -> Int { 0 }
    public var summary: String { String(describing: type(of: self)) }
}

/// A pointwise activation as a layer (no parameters, no multiply-accumulates counted).
public final class Activation: Layer {
    public enum Function: Hashable, Sendable {
        case relu, tanh
        case leakyRelu(slope: Float)
    }

    public var isTraining = true
    public let function: Function

    public init(_ function: Function) { self.function = function }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch function {
        case .relu: return x.relu()
        case .tanh: return x.tanh()
        case .leakyRelu(let slope): return x.leakyRelu(slope: slope)
        }
    }
}

/// Layers applied in order; state names are `layers.<index>.<name>`.
public final class Sequential: Layer {
    public var isTraining = true
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }

    public func outputShape(forInput input: [Int]) -> [Int] { layers.reduce(input) { $1.outputShape(forInput: $0) } }

    public func multiplyAccumulates(forInput input: [Int]) -> Int {
        var shape = input
        var total = 0
        for layer in layers {
            total += layer.multiplyAccumulates(forInput: shape)
            shape = layer.outputShape(forInput: shape)
        }
        return total
    }
}
