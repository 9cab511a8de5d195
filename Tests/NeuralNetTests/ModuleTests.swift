import Autodiff
import NeuralNet
import Optimizers
import Testing

/// A small network for the tests: conv → BN → leaky ReLU → conv, and a list of heads.
final class TinyNet: Module {
    var isTraining = true
    let stem: Conv2d
    let norm: BatchNorm2d
    let blocks: [any Module]
    let head: Conv2d

    init(generator: inout RandomGenerator) {
        stem = Conv2d(inputs: 1, outputs: 4, kernel: 3, padding: 1, generator: &generator)
        norm = BatchNorm2d(channels: 4, affine: .shiftOnly)
        blocks = [Conv2d(inputs: 4, outputs: 4, kernel: 1, bias: false, generator: &generator)]
        head = Conv2d(inputs: 4, outputs: 1, kernel: 3, padding: 1, generator: &generator)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = norm(stem(x)).leakyRelu(slope: 0.2)  // (N, 4, H, W)
        h = (blocks[0] as! Conv2d)(h)  // (N, 4, H, W)
        return head(h)  // (N, 1, H, W)
    }
}

@Suite("Modules")
struct ModuleTests {
    @Test func parametersAndBuffersHaveStableDottedNames() {
        var generator = RandomGenerator(seed: 1)
        let net = TinyNet(generator: &generator)
        #expect(
            net.namedParameters().map(\.name) == [
                "stem.weight", "stem.bias", "norm.bias", "blocks.0.weight", "head.weight", "head.bias",
            ])
        #expect(net.namedBuffers().map(\.name) == ["norm.running_mean", "norm.running_var"])
        #expect(net.parameterCount == 4 * 9 + 4 + 4 + 16 + 36 + 1)
    }

    /// Reflection is cached per module: the same objects come back, and the cache keeps no module,
    /// parameter or buffer alive once the network is gone.
    @Test func reflectionIsCachedWithoutKeepingModulesAlive() {
        weak var weakNet: TinyNet?
        weak var weakParameter: Parameter?
        weak var weakBlock: AnyObject?
        do {
            var generator = RandomGenerator(seed: 2)
            let net = TinyNet(generator: &generator)
            let first = net.namedParameters()
            let second = net.namedParameters()
            #expect(first.map(\.name) == second.map(\.name))
            #expect(zip(first, second).allSatisfy { $0.parameter === $1.parameter })
            #expect(net.namedChildren.map(\.name) == ["stem", "norm", "blocks.0", "head"])
            weakNet = net
            weakParameter = first[3].parameter
            weakBlock = net.blocks[0]
        }
        #expect(weakNet == nil && weakParameter == nil && weakBlock == nil)
        var generator = RandomGenerator(seed: 3)
        let fresh = TinyNet(generator: &generator)  // may reuse the old identifiers: must not see old entries
        let owned = [fresh.stem.weight, fresh.stem.bias!, fresh.norm.bias!, fresh.head.weight]
        let found = fresh.namedParameters().map(\.parameter)
        #expect(owned.allSatisfy { parameter in found.contains { $0 === parameter } })
    }

    @Test func trainingFlagIsPerModule() {
        var generator = RandomGenerator(seed: 2)
        let net = TinyNet(generator: &generator)
        net.setTraining(false)
        #expect(!net.isTraining && !net.norm.isTraining && !net.stem.isTraining)
        net.norm.isTraining = true
        #expect(net.norm.isTraining && !net.isTraining)
    }

    @Test func batchNormTracksRunningStatisticsLikePyTorch() {
        let norm = BatchNorm2d(channels: 1, momentum: 0.1)
        let x = Tensor(shape: [2, 1, 1, 2], scalars: [1, 2, 3, 6])
        _ = norm(x)
        // Batch mean 3, unbiased variance (4 + 1 + 0 + 9) / 3.
        #expect(Swift.abs(norm.runningMean.value.scalar - 0.3) < 1e-6)
        #expect(Swift.abs(norm.runningVar.value.scalar - (0.9 + 0.1 * 14 / 3)) < 1e-5)
        norm.isTraining = false
        let y = norm(x).scalars
        let expected = [Float(1), 2, 3, 6].map { ($0 - 0.3) / (0.9 + 0.1 * 14 / 3 + 1e-5).squareRoot() }
        for (a, b) in zip(y, expected) { #expect(Swift.abs(a - b) < 1e-5) }
    }

    @Test func adamTakesThePyTorchFirstStep() {
        let parameter = Parameter(Tensor(shape: [2], scalars: [1, -1]))
        var adam = Adam(parameters: [parameter], learningRate: 0.1, beta1: 0, beta2: 0.9)
        var gradients = Gradients()
        gradients[parameter] = Tensor(shape: [2], scalars: [0.5, -2])
        adam.step(gradients)
        // Step 1: m̂ = g, v̂ = g², so θ moves by lr·g/(|g| + ε) = ±lr.
        let moved = parameter.value.scalars
        #expect(Swift.abs(moved[0] - 0.9) < 1e-6 && Swift.abs(moved[1] + 0.9) < 1e-6)
        gradients[parameter] = Tensor(shape: [2], scalars: [1, 1])
        adam.step(gradients)
        // Step 2 with β₁ = 0: m̂ = g, v̂ = (0.9·g₁² + 0.1·g₂²)/(1 − 0.81).
        let v0 = (0.9 * 0.25 * 0.1 + 0.1 * 1) / (1 - 0.81)
        let v1 = (0.9 * 4 * 0.1 + 0.1 * 1) / (1 - 0.81)
        let after = parameter.value.scalars
        #expect(Swift.abs(after[0] - Float(0.9 - 0.1 / (v0.squareRoot() + 1e-8))) < 1e-5)
        #expect(Swift.abs(after[1] - Float(-0.9 - 0.1 / (v1.squareRoot() + 1e-8))) < 1e-5)
        #expect(adam.stepCount == 2)
    }

    @Test func aSmallConvNetFittedWithSGDDrivesItsLossDown() {
        var generator = RandomGenerator(seed: 3)
        let teacher = TinyNet(generator: &generator)
        let student = TinyNet(generator: &generator)
        let inputs = Tensor.randomNormal([16, 1, 8, 8], generator: &generator)  // (16, 1, 8, 8)
        teacher.setTraining(false)
        let targets = noGrad { teacher(inputs) }  // (16, 1, 8, 8)
        var optimizer = SGD(parameters: student.parameters, learningRate: 0.05, momentum: 0.9)
        var losses: [Float] = []
        for _ in 0..<150 {
            let (loss, gradients) = valueAndGradients(
                of: { (student(inputs) - targets).squared().mean() }, wrt: student.parameters)
            #expect(gradients.count == student.parameters.count)
            losses.append(loss)
            optimizer.step(gradients)
        }
        #expect(losses.allSatisfy { $0.isFinite })
        #expect(losses.last! < 0.1 * losses.first!, "loss went from \(losses.first!) to \(losses.last!)")
    }
}

@Suite("Embedding")
struct EmbeddingTests {
    @Test func looksUpRowsAndSendsGradientsToThem() {
        var generator = RandomGenerator(seed: 4)
        let table = Embedding(count: 5, dimension: 3, generator: &generator)
        let rows = table.weight.value.scalars
        let looked = table([4, 0, 4])
        #expect(looked.shape == [3, 3])
        #expect(looked.scalars == Array(rows[12..<15]) + Array(rows[0..<3]) + Array(rows[12..<15]))
        let (_, gradients) = valueAndGradients(of: { table([4, 0, 4]).sum() }, wrt: table.parameters)
        #expect(gradients[table.weight]!.scalars == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2])
        #expect(table.namedParameters().map(\.name) == ["weight"])
    }
}
