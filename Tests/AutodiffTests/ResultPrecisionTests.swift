import Autodiff
import Kernels
import TestSupport
import Testing

/// Which tensors hold bf16 values under bf16 (docs/model.md §9), on every backend: the same tensors
/// on each, every one of them exactly bf16, and activations that oneDNN stores in 16 bits.
@Suite("bf16 activations: the same rounding points on every backend")
struct ResultPrecisionTests {
    /// Backends that run bf16 here: oneDNN only with bf16 instructions.
    static var bf16Backends: [any Backend] {
        backendsUnderTest.filter { $0.id != .oneDNN || !Engine.bf16Instructions.isEmpty }
    }

    func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var sample = Sample(seed: seed)
        return sample.tensor(shape)
    }

    /// A small block of each kind the models use, with the precision of every tensor that matters.
    func precisions(_ backend: any Backend, _ precision: Precision) -> [String: Precision] {
        withBackend(backend) {
            withPrecision(precision) {
                let image = tensor([2, 3, 8, 8], seed: 1)
                let weight = tensor([16, 3, 4, 4], seed: 2).trackingGradients()
                let bias = tensor([16], seed: 3).trackingGradients()
                let scale = tensor([16], seed: 4).trackingGradients()
                let gamma = tensor([1], seed: 5).trackingGradients()
                let z = tensor([2, 5], seed: 6)
                let linearWeight = tensor([16 * 16, 5], seed: 7).trackingGradients()
                let (keyWeight, valueWeight) = (tensor([2, 16, 1, 1], seed: 10), tensor([16, 16, 1, 1], seed: 11))
                var seen: [String: Precision] = [:]
                let (_, gradients) = valueAndGradients(
                    of: {
                        let convolved = Tensor.conv2d(image, weight: weight, bias: bias, stride: 2, padding: 1)
                        let normalized = Tensor.batchNormTraining(
                            convolved, scale: scale, shift: nil, epsilon: 1e-5
                        ).output
                        let activated = normalized.leakyRelu(slope: 0.2)
                        let projected = Tensor.linear(z, weight: linearWeight).reshaped(to: [2, 16, 4, 4])
                        let keys = Tensor.conv2d(activated, weight: keyWeight).reshaped(to: [2, 2, 16])
                        let values = Tensor.conv2d(activated, weight: valueWeight).reshaped(to: [2, 16, 16])
                        let attended = Tensor.attention(queries: keys, keys: keys, values: values)
                        let residual = activated + gamma * projected + attended.reshaped(to: [2, 16, 4, 4])
                        let mixed = residual + tensor([2, 16, 4, 4], seed: 8)
                        let loss = (residual * residual).mean() + mixed.mean()
                        seen["conv"] = convolved.precision
                        seen["batch norm"] = normalized.precision
                        seen["leaky relu"] = activated.precision
                        seen["linear"] = projected.precision
                        seen["attention"] = attended.precision
                        seen["residual"] = residual.precision
                        seen["bf16 + fp32"] = mixed.precision
                        seen["loss"] = loss.precision
                        for (name, value) in [
                            ("conv", convolved), ("batch norm", normalized), ("attention", attended),
                            ("residual", residual),
                        ] where value.precision == .bf16 {
                            #expect(
                                value.scalars.allSatisfy { BFloat16.round($0) == $0 },
                                "\(backend.id) \(name): a bf16 tensor holds values that are not bf16")
                        }
                        return loss
                    }, wrt: [weight, bias, scale, gamma, linearWeight])
                for (name, gradient) in zip(["dW", "db", "dscale", "dgamma", "dW linear"], gradients) {
                    seen[name] = gradient.precision
                }
                let x = tensor([2, 3, 8, 8], seed: 9).trackingGradients()
                let (_, inputGradient) = valueAndGradients(
                    of: { Tensor.conv2d(x, weight: weight.detached(), bias: nil, stride: 2, padding: 1).relu().sum() },
                    wrt: [x])
                seen["dx"] = inputGradient[0].precision
                return seen
            }
        }
    }

    @Test func bf16RoundsActivationsAndKeepsWeightsInFloat32() {
        let expected: [String: Precision] = [
            "conv": .bf16, "batch norm": .bf16, "leaky relu": .bf16, "linear": .bf16, "attention": .bf16,
            "residual": .bf16,
            "bf16 + fp32": .fp32, "loss": .fp32, "dW": .fp32, "db": .fp32, "dscale": .fp32, "dgamma": .fp32,
            "dW linear": .fp32, "dx": .bf16,
        ]
        for backend in Self.bf16Backends {
            #expect(precisions(backend, .bf16) == expected, "\(backend.id)")
        }
    }

    @Test func fp32KeepsEverythingInFloat32() {
        for backend in backendsUnderTest {
            #expect(precisions(backend, .fp32).values.allSatisfy { $0 == .fp32 }, "\(backend.id)")
        }
    }

    /// oneDNN keeps a bf16 activation in 16 bits: half the Float32 slots.
    @Test(.enabled(if: !Engine.bf16Instructions.isEmpty, "oneDNN runs bf16 only with AVX512_BF16 or AMX"))
    func oneDNNStoresActivationsInSixteenBits() throws {
        let onednn = try #require(OneDNNBackend.shared)
        let output = withBackend(onednn) {
            withPrecision(.bf16) {
                Tensor.conv2d(tensor([2, 16, 8, 8], seed: 10), weight: tensor([32, 16, 4, 4], seed: 11), stride: 2)
                    .relu()
            }
        }
        let layout = try #require(output.storage.layout, "a bf16 activation in row-major Float32")
        #expect(output.precision == .bf16)
        #expect(layout.capacity * 2 == output.count, "\(layout.capacity) Float slots for \(output.count) bf16 values")
    }
}
