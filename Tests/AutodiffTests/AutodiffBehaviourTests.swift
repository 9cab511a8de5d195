import Autodiff
import Foundation
import Kernels
import TestSupport
import Testing

@Suite("Tape semantics")
struct AutodiffBehaviourTests {
    /// isFinite is false exactly when some element is NaN or ±infinity, wherever it lies (the largest
    /// finite values and subnormals are finite).
    @Test func finitenessFindsEveryNonFiniteElement() {
        let finite: [Float] = [0, -0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1]
        let values = (0..<1000).map { finite[$0 % finite.count] }
        #expect(Tensor(shape: [1000], scalars: values).isFinite)
        #expect(Tensor(shape: [0], scalars: []).isFinite)
        for bad in [Float.nan, .infinity, -.infinity, Float(bitPattern: 0x7FC0_0001)] {
            for position in [0, 17, 999] {
                var changed = values
                changed[position] = bad
                #expect(!Tensor(shape: [1000], scalars: changed).isFinite, "\(bad) at \(position)")
            }
        }
    }

    @Test func gradientsAccumulateWhenATensorFeedsSeveralOperations() {
        let x = Tensor(shape: [3], scalars: [1, -2, 0.5]).trackingGradients()
        // x feeds the product twice and the sum once: d/dx (x·x + x) = 2x + 1.
        let (value, grads) = valueAndGradients(of: { (x * x + x).sum() }, wrt: [x])
        #expect(value.scalar == 1 + 1 + 4 - 2 + 0.25 + 0.5)
        #expect(grads[0].scalars == [3, -3, 2])
    }

    @Test func broadcastGradientsReduceToTheOperandShape() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]).trackingGradients()
        let b = Tensor(shape: [3], scalars: [10, 20, 30]).trackingGradients()
        let grads = valueAndGradients(of: { (a * b).sum() }, wrt: [a, b]).gradients
        #expect(grads[1].shape == [3])
        #expect(grads[1].scalars == [5, 7, 9])
        #expect(grads[0].scalars == [10, 20, 30, 10, 20, 30])
    }

    @Test func onlyRequestedLeavesAreDifferentiatedAndUnusedOnesGetZeros() {
        let used = Tensor(shape: [2], scalars: [1, 2]).trackingGradients()
        let other = Tensor(shape: [2], scalars: [3, 4]).trackingGradients()
        let unused = Tensor(shape: [1, 2], scalars: [5, 6]).trackingGradients()
        let grads = valueAndGradients(of: { (used * other).sum() }, wrt: [used, unused]).gradients
        #expect(grads.count == 2)
        #expect(grads[0].scalars == [3, 4])
        #expect(grads[1].shape == [1, 2] && grads[1].scalars == [0, 0])
    }

    @Test func noGradAndDetachedRecordNothing() {
        let x = Tensor(shape: [2], scalars: [1, 2]).trackingGradients()
        #expect((x * 2).requiresGradient)
        #expect(!noGrad { x * 2 }.requiresGradient)
        #expect(!(x.detached() * 2).requiresGradient)
        // A detached branch contributes a value but no gradient.
        let grads = valueAndGradients(of: { (x * x.detached()).sum() }, wrt: [x]).gradients
        #expect(grads[0].scalars == [1, 2])
    }

    @Test func aDiscriminatorStepLeavesTheGeneratorAlone() {
        // The GAN pattern: gradients of D's loss with respect to D only, through G's detached sample.
        let generatorWeight = Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]).trackingGradients()
        let discriminatorWeight = Tensor(shape: [1, 2], scalars: [0.5, -1]).trackingGradients()
        let z = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        let fake = noGrad { Tensor.matmul(z, generatorWeight) }
        let (_, dGrads) = valueAndGradients(
            of: {
                Tensor.linear(fake, weight: discriminatorWeight).affine(scale: 1, shift: 1).relu().mean()
            }, wrt: [discriminatorWeight])
        #expect(dGrads[0].shape == [1, 2])
        let (_, gGrads) = valueAndGradients(
            of: {
                -Tensor.linear(Tensor.matmul(z, generatorWeight), weight: discriminatorWeight).mean()
            }, wrt: [generatorWeight])
        // d/dW of −mean(z W dᵀ) = −mean over rows of zᵀ d.
        let expected: [Float] = [-(1 + 3 + 5) / 3 * 0.5, (1 + 3 + 5) / 3, -(2 + 4 + 6) / 3 * 0.5, (2 + 4 + 6) / 3]
        for (g, e) in zip(gGrads[0].scalars, expected) { #expect(Swift.abs(g - e) < 1e-5) }
    }

    @Test func backendsAgreeOnAWholeNetworkGradient() throws {
        guard let fast = OneDNNBackend.shared else {
            Issue.record("oneDNN unavailable")
            return
        }
        var sample = Sample(seed: 11)
        let x = sample.tensor([3, 3, 8, 8])
        let w1 = sample.tensor([4, 3, 4, 4], scale: 0.3).trackingGradients()
        let w2 = sample.tensor([4, 2, 4, 4], scale: 0.3).trackingGradients()
        let scale = sample.positive([2]).trackingGradients()
        func network() -> Tensor {
            var h = Tensor.conv2d(x, weight: w1, stride: 2, padding: 1).leakyRelu(slope: 0.2)  // (3, 4, 4, 4)
            h = Tensor.convTranspose2d(h, weight: w2, stride: 2, padding: 1)  // (3, 2, 8, 8)
            h = Tensor.batchNormTraining(h, scale: scale, shift: nil, epsilon: 1e-5).output.relu()
            let flat = h.reshaped(to: [3, 2, 64])  // (3, 2, 64)
            let attention = Tensor.matmul(flat, flat, transposeA: true).softmax()  // (3, 64, 64)
            return Tensor.matmul(flat, attention).tanh().mean()
        }
        let reference = withBackend(BackendRegistry.reference) { valueAndGradients(of: network, wrt: [w1, w2, scale]) }
        let onednn = withBackend(fast) { valueAndGradients(of: network, wrt: [w1, w2, scale]) }
        #expect(Swift.abs(reference.value.scalar - onednn.value.scalar) < 1e-5)
        for (r, o) in zip(reference.gradients, onednn.gradients) {
            let worst = zip(r.scalars, o.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
            let scaleOfGradient = max(1e-3, r.scalars.map { Swift.abs($0) }.max() ?? 0)
            #expect(worst <= 1e-3 * scaleOfGradient, "gradient of shape \(r.shape) differs by \(worst)")
        }
    }

    /// Convolution outputs stay in oneDNN's blocked layout through batch norm and ReLU into the next
    /// convolution, forward and backward (16 channels: whole blocks), or take the row-major route
    /// (8 channels, padded to a block of 16). The buffer pool is first filled with NaN-poisoned
    /// buffers of the padded size, so padding that a kernel leaves unwritten would show. Both
    /// backends must agree.
    @Test(arguments: [16, 8])
    func blockedLayoutsFlowThroughNormalisationAndActivations(channels: Int) throws {
        guard let fast = OneDNNBackend.shared else {
            Issue.record("oneDNN unavailable")
            return
        }
        var sample = Sample(seed: 13)
        let x = sample.tensor([4, 5, 64, 64])
        let w1 = sample.tensor([channels, 5, 3, 3], scale: 0.3).trackingGradients()
        let w2 = sample.tensor([6, channels, 3, 3], scale: 0.3).trackingGradients()
        let shift = sample.tensor([channels]).trackingGradients()
        func network() -> Tensor {
            var h = Tensor.conv2d(x, weight: w1, padding: 1)  // (4, C, 64, 64)
            h = Tensor.batchNormTraining(h, scale: nil, shift: shift, epsilon: 1e-5).output.relu()
            h = Tensor.conv2d(h, weight: w2, stride: 2, padding: 1).leakyRelu(slope: 0.2)  // (4, 6, 32, 32)
            return h.squared().mean()
        }
        poisonBufferPool(bufferBytes: 4 * 16 * 64 * 64 * MemoryLayout<Float>.stride)
        expectBackendsAgree(fast, wrt: [w1, w2, shift], of: network)
    }

    /// Fills the buffer pool with NaN-poisoned buffers of this size, so that padding a kernel leaves
    /// unwritten in a reused buffer would show in the results.
    func poisonBufferPool(bufferBytes: Int) {
        let poisoned = (0..<8).map { _ in BufferPool.shared.allocate(bufferBytes) }
        for buffer in poisoned {
            buffer.initializeMemory(as: Float.self, repeating: .nan, count: bufferBytes / MemoryLayout<Float>.stride)
            BufferPool.shared.release(buffer, bytes: bufferBytes)
        }
    }

    /// The value (1e-4 relative) and every gradient (1e-3 of its largest element) of `network` on
    /// oneDNN against the reference backend.
    func expectBackendsAgree(_ fast: any Backend, wrt leaves: [Tensor], of network: () -> Tensor) {
        let reference = withBackend(BackendRegistry.reference) { valueAndGradients(of: network, wrt: leaves) }
        let onednn = withBackend(fast) { valueAndGradients(of: network, wrt: leaves) }
        #expect(
            onednn.value.scalar.isFinite
                && Swift.abs(reference.value.scalar - onednn.value.scalar) < 1e-4 * Swift.abs(reference.value.scalar))
        for (r, o) in zip(reference.gradients, onednn.gradients) {
            let worst = zip(r.scalars, o.scalars).map { Swift.abs($0 - $1) }.max() ?? .infinity
            let scaleOfGradient = max(1e-3, r.scalars.map { Swift.abs($0) }.max() ?? 0)
            #expect(worst <= 1e-3 * scaleOfGradient, "gradient of shape \(r.shape) differs by \(worst)")
        }
    }

    /// A self-attention block between convolutions: its operands arrive in oneDNN's blocked layouts
    /// (32 value channels in two whole blocks, 8 key channels padded to a block), reshaped to
    /// (B, C, H·W); the attention reads and writes those layouts, and γ·o + x stays blocked into the
    /// next convolution. Value and every gradient must match the reference backend, with the buffer
    /// pool NaN-poisoned as above.
    @Test func attentionReadsAndWritesBlockedLayouts() throws {
        guard let fast = OneDNNBackend.shared else {
            Issue.record("oneDNN unavailable")
            return
        }
        var sample = Sample(seed: 14)
        let image = sample.tensor([2, 3, 8, 8])
        let stem = sample.tensor([32, 3, 3, 3], scale: 0.3).trackingGradients()
        let f = sample.tensor([8, 32, 1, 1], scale: 0.3).trackingGradients()
        let g = sample.tensor([8, 32, 1, 1], scale: 0.3).trackingGradients()
        let h = sample.tensor([32, 32, 1, 1], scale: 0.3).trackingGradients()
        let head = sample.tensor([5, 32, 3, 3], scale: 0.3).trackingGradients()
        let gamma = Tensor(0.7).trackingGradients()
        var operandsWereBlocked = false
        func network() -> Tensor {
            let x = Tensor.conv2d(image, weight: stem, padding: 1).relu()  // (2, 32, 8, 8)
            let keys = Tensor.conv2d(x, weight: f).reshaped(to: [2, 8, 64])  // (2, 8, 64)
            let queries = Tensor.conv2d(x, weight: g).reshaped(to: [2, 8, 64])  // (2, 8, 64)
            let values = Tensor.conv2d(x, weight: h).reshaped(to: [2, 32, 64])  // (2, 32, 64)
            operandsWereBlocked = values.storage.layout != nil && keys.storage.layout != nil
            let attended = Tensor.attention(queries: queries, keys: keys, values: values).reshaped(to: [2, 32, 8, 8])
            let y = attended * gamma + x  // (2, 32, 8, 8)
            return Tensor.conv2d(y, weight: head, padding: 1).squared().mean()
        }
        poisonBufferPool(bufferBytes: 1 << 20)
        expectBackendsAgree(fast, wrt: [stem, f, g, h, head, gamma], of: network)
        #expect(operandsWereBlocked, "the oneDNN run should hand the attention blocked operands")
    }

    /// Runs in a child process so that other tests' allocations do not count.
    @Test(.tags(.slow), .skippedInFastRuns) func theGraphIsFreedAndMemoryStopsGrowing() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let growth = AutodiffBehaviourTests.residentGrowthOverTrainingSteps()
            FileHandle.standardError.write(Data("resident memory grew by \(growth) bytes over 900 steps\n".utf8))
            exit(growth < 2 << 20 ? 0 : 1)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("resident memory grew by"), "stderr: \(message)")
    }

    /// Trains a small conv net for 1,000 steps and returns the resident-memory growth over the last 900.
    /// The step size changes every step, as Adam's bias corrections do, so a backend that compiled
    /// kernels per scalar value would grow here.
    static func residentGrowthOverTrainingSteps() -> Int {
        var sample = Sample(seed: 12)
        let x = sample.tensor([4, 3, 8, 8])
        var w1 = sample.tensor([8, 3, 3, 3], scale: 0.3)
        var w2 = sample.tensor([4, 8, 4, 4], scale: 0.3)
        var count = 0
        func step() {
            count += 1
            let rate = 0.01 / Float(count).squareRoot()
            let leaves = [w1.trackingGradients(), w2.trackingGradients()]
            let (_, grads) = valueAndGradients(
                of: {
                    let h = Tensor.conv2d(x, weight: leaves[0], padding: 1).relu()  // (4, 8, 8, 8)
                    return Tensor.conv2d(h, weight: leaves[1], stride: 2, padding: 1).squared().mean()
                }, wrt: leaves)
            w1 = noGrad { w1 - grads[0] * rate }
            w2 = noGrad { w2 - grads[1] * rate }
        }
        for _ in 0..<100 { step() }
        let before = residentBytes()
        for _ in 0..<900 { step() }
        return residentBytes() - before
    }

    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = Int(text.split(separator: " ")[1]) ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test(.tags(.slow), .skippedInFastRuns) func invalidArgumentsStopWithAMessageNamingTheOpAndShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor.zeros([1, 3, 5, 5])
            let w = Tensor.zeros([4, 2, 3, 3])
            _ = Tensor.conv2d(x, weight: w)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(
            message.contains("conv2d: input has 3 channels but weight [4, 2, 3, 3] expects 2"), "stderr: \(message)")
        await #expect(processExitsWith: .failure) {
            _ = Tensor.zeros([2, 3]) + Tensor.zeros([4])
        }
    }
}

@Suite("Random generator")
struct RandomGeneratorTests {
    @Test func philoxMatchesTheKnownAnswer() {
        // Philox-4x32-10 with counter 0 and key 0 (Random123 known-answer test).
        var generator = RandomGenerator(seed: 0)
        let block = generator.nextBlock()
        #expect([block.0, block.1, block.2, block.3] == [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
    }

    @Test func stateRoundTripsExactly() throws {
        var generator = RandomGenerator(seed: 42)
        _ = generator.normal(count: 13)
        let saved = try JSONEncoder().encode(generator)
        let expected = generator.normal(count: 10)
        var restored = try JSONDecoder().decode(RandomGenerator.self, from: saved)
        #expect(restored.normal(count: 10) == expected)
    }

    @Test func normalAndUniformHaveTheRightMoments() {
        var generator = RandomGenerator(seed: 7)
        let normal = generator.normal(count: 100_000).map(Double.init)
        let mean = normal.reduce(0, +) / Double(normal.count)
        let variance = normal.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(normal.count)
        #expect(Swift.abs(mean) < 0.01 && Swift.abs(variance - 1) < 0.02)
        let uniform = generator.uniform(count: 100_000)
        #expect(uniform.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(Swift.abs(uniform.reduce(0, +) / 100_000 - 0.5) < 0.01)
        let other = RandomGenerator(seed: 7).derived(purpose: 1)
        #expect(other.seed != 7)
    }
}
