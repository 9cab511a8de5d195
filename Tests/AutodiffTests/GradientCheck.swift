import Autodiff
import Kernels
import Testing

/// Checks the tape's gradients of Σ r ⊙ f(inputs) against central finite differences in Float32,
/// on the reference backend. The kernels' own derivatives are checked in Double by KernelsTests;
/// this checks each op's pullback wiring: transposes, broadcasting reductions, masks, accumulation.
func checkGradients(
    _ inputs: [Tensor], tolerance: Double = 2e-2, step: Float = 5e-3, seed: UInt64 = 99,
    sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor
) {
    withBackend(BackendRegistry.reference) {
        let leaves = inputs.map { $0.trackingGradients() }
        let output = f(leaves)
        var generator = RandomGenerator(seed: seed)
        let weights = Tensor.randomUniform(output.shape, low: -1, high: 1, generator: &generator)
        let analytic = gradients(of: (output * weights).sum(), wrt: leaves)
        let weightValues = weights.scalars.map(Double.init)
        func loss(_ values: [Tensor]) -> Double {
            noGrad { zip(f(values).scalars, weightValues).reduce(0) { $0 + Double($1.0) * $1.1 } }
        }
        for (index, input) in inputs.enumerated() {
            var scalars = input.scalars
            var numeric = [Double](repeating: 0, count: scalars.count)
            for element in scalars.indices {
                let original = scalars[element]
                var probe = inputs
                scalars[element] = original + step
                probe[index] = Tensor(shape: input.shape, scalars: scalars)
                let plus = loss(probe)
                scalars[element] = original - step
                probe[index] = Tensor(shape: input.shape, scalars: scalars)
                let minus = loss(probe)
                scalars[element] = original
                numeric[element] = (plus - minus) / (2 * Double(step))
            }
            let computed = analytic[index].scalars.map(Double.init)
            #expect(
                analytic[index].shape == input.shape, "input \(index): gradient shape \(analytic[index].shape)",
                sourceLocation: sourceLocation)
            let scale = max(1, numeric.map { Swift.abs($0) }.max() ?? 0)
            let worst = zip(computed, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
            #expect(
                worst <= tolerance * scale, "input \(index): worst difference \(worst) at gradient scale \(scale)",
                sourceLocation: sourceLocation)
        }
    }
}

/// Deterministic test tensors.
struct Sample {
    var generator: RandomGenerator
    init(seed: UInt64) { generator = RandomGenerator(seed: seed) }

    /// Uniform in [-1, 1), kept at least `margin` away from 0 (kinks of relu and abs).
    mutating func tensor(_ shape: [Int], margin: Float = 0, scale: Float = 1) -> Tensor {
        let values = generator.uniform(count: shape.reduce(1, *)).map { u -> Float in
            let v = 2 * u - 1
            return scale * (v < 0 ? v - margin : v + margin)
        }
        return Tensor(shape: shape, scalars: values)
    }

    /// Uniform in [low, high).
    mutating func positive(_ shape: [Int], low: Float = 0.5, high: Float = 1.5) -> Tensor {
        Tensor.randomUniform(shape, low: low, high: high, generator: &generator)
    }
}
