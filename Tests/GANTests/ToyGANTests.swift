import Autodiff
import Foundation
import GAN
import NeuralNet
import Optimizers
import TestSupport
import Testing

/// A 2-D GAN on eight Gaussians on a ring: the classic check that G, D, the losses and the
/// optimisers work together and do not collapse onto one mode.
@Suite("Toy GAN", .tags(.slow), .skippedInFastRuns)
struct ToyGANTests {
    final class MLP: Module {
        var isTraining = true
        let layers: [Linear]
        let slope: Float

        init(_ sizes: [Int], slope: Float, generator: inout RandomGenerator) {
            layers = zip(sizes, sizes.dropFirst()).map { Linear(inputs: $0, outputs: $1, generator: &generator) }
            self.slope = slope
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            var h = x  // (B, in)
            for (index, layer) in layers.enumerated() {
                h = layer(h)
                if index < layers.count - 1 { h = h.leakyRelu(slope: slope) }
            }
            return h  // (B, out)
        }
    }

    static let centers: [(Float, Float)] = (0..<8).map { k in
        let angle = Float(k) * .pi / 4
        return (2 * cos(angle), 2 * sin(angle))
    }

    func realBatch(_ count: Int, _ random: inout RandomGenerator) -> Tensor {
        let picks = random.uniform(count: count).map { min(Int($0 * 8), 7) }
        let noise = random.normal(count: 2 * count, standardDeviation: 0.05)
        var points = [Float](repeating: 0, count: 2 * count)
        for i in 0..<count {
            let center = Self.centers[picks[i]]
            points[2 * i] = center.0 + noise[2 * i]
            points[2 * i + 1] = center.1 + noise[2 * i + 1]
        }
        return Tensor(shape: [count, 2], scalars: points)
    }

    /// In fp32 and in bf16 (the linear layers' products with bf16 operands) where the CPU has bf16:
    /// elsewhere bf16 is refused.
    @Test(arguments: Engine.bf16Instructions.isEmpty ? [Precision.fp32] : [.fp32, .bf16])
    func coversAtLeastSixOfEightModes(_ precision: Precision) throws {
        try Engine.run(EngineConfiguration(precision: precision)) { try train() }
    }

    func train() throws {
        var random = RandomGenerator(seed: 2)
        let g = MLP([8, 128, 128, 2], slope: 0.2, generator: &random)
        let d = MLP([2, 128, 128, 1], slope: 0.2, generator: &random)
        var optimizerG = Adam(parameters: g.parameters, learningRate: 1e-3, beta1: 0.5, beta2: 0.9)
        var optimizerD = Adam(parameters: d.parameters, learningRate: 1e-3, beta1: 0.5, beta2: 0.9)
        let batch = 256
        for _ in 0..<1000 {
            let real = realBatch(batch, &random)
            let fake = noGrad { g(Tensor.randomNormal([batch, 8], generator: &random)) }
            let (_, gradientsD) = valueAndGradients(
                of: { GANLoss.discriminator(.nonSaturating, real: d(real), fake: d(fake)) },
                wrt: d.parameters)
            optimizerD.step(gradientsD)
            let z = Tensor.randomNormal([batch, 8], generator: &random)
            let (_, gradientsG) = valueAndGradients(
                of: { GANLoss.generator(.nonSaturating, fake: d(g(z))) }, wrt: g.parameters)
            optimizerG.step(gradientsG)
        }
        let samples = noGrad { g(Tensor.randomNormal([2000, 8], generator: &random)) }.scalars
        var counts = [Int](repeating: 0, count: 8)
        var near = 0
        for i in 0..<2000 {
            let (x, y) = (samples[2 * i], samples[2 * i + 1])
            let distances = Self.centers.map { center -> Float in
                let (dx, dy) = (center.0 - x, center.1 - y)
                return (dx * dx + dy * dy).squareRoot()
            }
            let closest = distances.indices.min { distances[$0] < distances[$1] }!
            if distances[closest] < 0.5 {
                counts[closest] += 1
                near += 1
            }
        }
        let covered = counts.filter { $0 >= 20 }.count  // at least 1% of the samples each
        let near05 = "\(near) of 2000 within 0.5 of a mode"
        #expect(covered >= 6, "\(Engine.precision): modes covered: \(covered), samples per mode \(counts), \(near05)")
        // Spread evenly over the ring's square, about 17% of points would lie this close to a mode by chance.
        #expect(near > 700, "only \(near) of 2000 samples lie near a mode")
    }
}
