import Autodiff
import NeuralNet

#if canImport(Glibc)
    import Glibc
#endif

/// Updates a fixed list of parameters from their gradients; state is keyed by parameter identity.
public protocol Optimizer {
    /// The parameters this optimiser owns, in order.
    var parameters: [Parameter] { get }
    /// One update. Parameters without a gradient are left unchanged.
    mutating func step(_ gradients: Gradients)
}

/// Plain stochastic gradient descent, optionally with momentum: v ← μv + g; θ ← θ − lr·v.
public struct SGD: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public var momentum: Float
    private var velocity: [ObjectIdentifier: Tensor] = [:]

    public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public mutating func step(_ gradients: Gradients) {
        noGrad {
            for parameter in parameters {
                guard var direction = gradients[parameter] else { continue }
                if momentum != 0 {
                    let id = ObjectIdentifier(parameter)
                    direction = velocity[id].map { $0 * momentum + direction } ?? direction
                    velocity[id] = direction
                }
                parameter.assign(parameter.value - direction * learningRate)
            }
        }
    }
}

/// Adam (Kingma & Ba) in PyTorch's form:
/// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
/// SAGAN's two-timescale rule uses lr 4e-4 for D and 1e-4 for G with betas (0, 0.9).
public struct Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    /// Steps taken so far (t).
    public private(set) var stepCount = 0
    private var firstMoments: [ObjectIdentifier: Tensor] = [:]
    private var secondMoments: [ObjectIdentifier: Tensor] = [:]

    public init(
        parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
    ) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// The moments of `parameter`, if it has been updated (for checkpoints).
    public func moments(of parameter: Parameter) -> (first: Tensor, second: Tensor)? {
        let id = ObjectIdentifier(parameter)
        guard let first = firstMoments[id], let second = secondMoments[id] else { return nil }
        return (first, second)
    }

    /// Restores a saved state: the step count and each parameter's moments (shapes must match).
    public mutating func restore(stepCount: Int, moments: [(parameter: Parameter, first: Tensor, second: Tensor)]) {
        self.stepCount = stepCount
        firstMoments = [:]
        secondMoments = [:]
        for (parameter, first, second) in moments {
            guard first.shape == parameter.shape, second.shape == parameter.shape else {
                fatalError(
                    "Adam.restore: moments \(first.shape)/\(second.shape) do not match parameter \(parameter.shape)")
            }
            firstMoments[ObjectIdentifier(parameter)] = first.detached()
            secondMoments[ObjectIdentifier(parameter)] = second.detached()
        }
    }

    public mutating func step(_ gradients: Gradients) {
        stepCount += 1
        let correction1 = Float(1 - pow(Double(beta1), Double(stepCount)))
        let correction2 = Float(1 - pow(Double(beta2), Double(stepCount)))
        for parameter in parameters {
            guard let gradient = gradients[parameter] else { continue }
            let id = ObjectIdentifier(parameter)
            let updated = Tensor.fusedAdamUpdate(
                parameter: parameter.value, gradient: gradient, first: firstMoments[id], second: secondMoments[id],
                learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                correction1: correction1, correction2: correction2)
            firstMoments[id] = updated.first
            secondMoments[id] = updated.second
            parameter.assign(updated.parameter)
        }
    }
}
