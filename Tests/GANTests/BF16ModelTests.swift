import Autodiff
import GAN
import Kernels
import NeuralNet
import Testing

/// Whole generator and discriminator passes in bf16: oneDNN against the reference backend's bf16
/// mode, forward and backward, as one training step's discriminator and generator losses see them.
///
/// Tolerance. Both backends round the same operands at the same points, so they differ by Float32
/// summation order and by the few operands that this order pushes across a bf16 rounding boundary;
/// each such flip moves one operand by a bf16 ulp, 2⁻⁸ of itself. Their activations then differ a
/// hundred times more than two Float32 backends do, and a ReLU input that close to zero takes the
/// other mask and moves gradients by percents: the models are in the kink-free state of the
/// PyTorch parity fixtures (positive BN shifts in G, a discriminator slope of 1). There the shifted
/// inputs (3 + x̂) carry their signal below a larger offset, and one flip moves an element by up to
/// 2⁻⁸·3; measured, outputs and gradients agree within 6e-3 in ‖a − b‖ / ‖b‖. `tolerance` is
/// 1e-2 ≈ 5u (u = 2⁻⁹, bf16's unit roundoff). Key projection biases are left out: softmax over keys
/// ignores them, so their gradient is zero in exact arithmetic and only rounding noise here.
///
/// That the bf16 path ran is checked over the whole pass: oneDNN's bf16 results lie, on average
/// over the tensors, less than half as far from the reference's bf16 results as from Float32's.
@Suite(
    "bf16 models match the reference backend's bf16 mode", .tags(.slow), .skippedInFastRuns,
    .enabled(if: !Engine.bf16Instructions.isEmpty, "oneDNN runs bf16 only on CPUs with AVX512_BF16 or AMX"))
struct BF16ModelTests {
    static let tolerance: Float = 1e-2

    /// Outputs, losses and gradients by name.
    typealias Pass = [String: Tensor]

    /// One discriminator loss and one generator loss with their gradients, on fresh models.
    func pass(_ config: ModelConfig, backend: any Backend, precision: Precision) -> Pass {
        withBackend(backend) {
            withPrecision(precision) {
                let (g, d) = build(config, seed: 7)
                Deterministic.setState(of: g, prefix: "G.")
                Deterministic.setState(of: d, prefix: "D.")
                let z = Deterministic.tensor("z", [2, config.latentSize], scale: 1.5)  // (2, latent)
                let side = config.resolution
                let real = Deterministic.tensor("x", [2, config.imageChannels, side, side])  // (2, C, R, R)
                var result = Pass()
                let fake = g(z)  // (2, C, R, R)
                result["G(z)"] = fake.detached()
                let (lossD, gradientsD) = valueAndGradients(
                    of: {
                        let realLogits = d(real)  // (2, 1)
                        result["D(real)"] = realLogits.detached()
                        return GANLoss.discriminator(.hinge, real: realLogits, fake: d(fake.detached()))
                    }, wrt: d.parameters)
                let (lossG, gradientsG) = valueAndGradients(
                    of: { GANLoss.generator(.hinge, fake: d(g(z))) }, wrt: g.parameters)
                (result["loss D"], result["loss G"]) = (Tensor(lossD), Tensor(lossG))
                for (name, parameter) in d.namedParameters() { result["grad D." + name] = gradientsD[parameter] }
                for (name, parameter) in g.namedParameters() { result["grad G." + name] = gradientsG[parameter] }
                return result
            }
        }
    }

    func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
        let (x, y) = (a.scalars, b.scalars)
        let difference = zip(x, y).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let norm = y.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return norm == 0 && difference == 0 ? 0 : difference / max(norm, 1e-30)
    }

    /// tiny32 (attention on 16x16 maps) and sagan32 at a quarter of its width (attention at 32x32
    /// in G and 16x16 in D): the reference backend is slow.
    @Test(arguments: ["tiny32", "sagan32"])
    func generatorAndDiscriminatorPasses(_ presetName: String) throws {
        let onednn = try #require(OneDNNBackend.shared)
        var config = try #require(ModelPreset(rawValue: presetName)).configuration()
        config.baseWidth = 512
        config.leakySlope = 1
        let fast = pass(config, backend: onednn, precision: .bf16)
        let oracle = pass(config, backend: BackendRegistry.reference, precision: .bf16)
        let float32 = pass(config, backend: BackendRegistry.reference, precision: .fp32)
        var largest = (name: "", difference: Float(0))
        var (toOracle, toFloat32) = ([Float](), [Float]())
        for (name, expected) in oracle.sorted(by: { $0.key < $1.key }) where !name.hasSuffix(".f.bias") {
            let actual = try #require(fast[name], "\(name) missing")
            let difference = relativeDifference(actual, expected)
            if difference > largest.difference { largest = (name, difference) }
            #expect(difference <= Self.tolerance, "\(presetName) \(name): oneDNN bf16 is \(difference) from the oracle")
            toOracle.append(difference)
            toFloat32.append(relativeDifference(actual, try #require(float32[name])))
        }
        let (meanToOracle, meanToFloat32) = (
            toOracle.reduce(0, +) / Float(toOracle.count), toFloat32.reduce(0, +) / Float(toFloat32.count)
        )
        print(
            "\(presetName) bf16: oneDNN vs reference bf16 at most \(largest.difference) (\(largest.name)), "
                + "\(meanToOracle) on average; vs reference fp32 \(meanToFloat32) on average")
        #expect(meanToOracle < meanToFloat32 / 2, "\(presetName): oneDNN's bf16 pass looks like a Float32 one")
    }
}
