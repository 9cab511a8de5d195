import Autodiff

/// A trainable tensor with an identity: optimisers key their state by the object, checkpoints by
/// the dotted name under which its module exposes it.
public final class Parameter: @unchecked Sendable {
    /// The current value, always a differentiation leaf so gradients can be taken with respect to it.
    public private(set) var value: Tensor

    public init(_ initial: Tensor) { value = initial.detached().trackingGradients() }

    public var shape: [Int] { value.shape }

    /// Replaces the value (an optimiser step, a checkpoint load); the shape must not change.
    public func assign(_ newValue: Tensor) {
        guard newValue.shape == value.shape else {
            fatalError("Parameter.assign: new value has shape \(newValue.shape), the parameter has \(value.shape)")
        }
        value = newValue.detached().trackingGradients()
    }
}

/// A non-trainable tensor that is part of a module's state and is saved with it: batch-norm
/// running statistics, spectral-norm vectors. Updated under `noGrad`, never by an optimiser.
public final class Buffer: @unchecked Sendable {
    public private(set) var value: Tensor

    public init(_ initial: Tensor) { value = initial.detached() }

    public var shape: [Int] { value.shape }

    public func assign(_ newValue: Tensor) {
        guard newValue.shape == value.shape else {
            fatalError("Buffer.assign: new value has shape \(newValue.shape), the buffer has \(value.shape)")
        }
        value = newValue.detached()
    }
}

/// Gradients of a loss, keyed by parameter identity. Returned by `valueAndGradients`, never stored
/// on parameters, so there is nothing to zero and one network's step cannot leak into another's.
public struct Gradients: @unchecked Sendable {
    private var byParameter: [ObjectIdentifier: Tensor]

    public init() { byParameter = [:] }

    public subscript(parameter: Parameter) -> Tensor? {
        get { byParameter[ObjectIdentifier(parameter)] }
        set { byParameter[ObjectIdentifier(parameter)] = newValue }
    }

    public var count: Int { byParameter.count }
}

/// Evaluates the scalar `body` and its gradients with respect to `parameters` only.
public func valueAndGradients(of body: () throws -> Tensor, wrt parameters: [Parameter]) rethrows -> (
    value: Float, gradients: Gradients
) {
    let leaves = parameters.map(\.value)
    let (value, tensors) = try Autodiff.valueAndGradients(of: body, wrt: leaves)
    var gradients = Gradients()
    for (parameter, gradient) in zip(parameters, tensors) { gradients[parameter] = gradient }
    return (value.scalar, gradients)
}
