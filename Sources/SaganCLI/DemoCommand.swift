import ArgumentParser
import Autodiff
import Foundation
import NeuralNet
import Optimizers

/// A small end-to-end run: a convolutional autoencoder (strided convs down, transposed convs up,
/// batch norm, leaky ReLU, tanh — the parts a DCGAN is made of) learns to reproduce synthetic
/// 16x16 images of discs, with Adam, and writes its reconstructions as a picture.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Train a small convolutional network end to end and write what it produces.")

    @Option(help: "Training steps.") var steps = 300
    @Option(help: "Images per step.") var batch = 32
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Folder for the output picture.") var out = "demo-output"

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard batch >= 2 else { throw ValidationError("--batch must be at least 2 (batch norm needs two images), got \(batch)") }
    }

    func run() throws {
        var generator = RandomGenerator(seed: seed)
        let model = Autoencoder(generator: &generator)
        var optimizer = Adam(parameters: model.parameters, learningRate: 2e-3, beta1: 0.5, beta2: 0.999)
        print("demo: autoencoder with \(model.parameterCount) parameters on synthetic 16x16 discs, \(steps) steps of \(batch) images, backend \(EngineContext.backend.name)")
        var progress = ProgressLine()
        var data = generator.derived(purpose: 1)
        let start = monotonicSeconds()
        var firstLoss: Float = 0
        var loss: Float = 0
        for step in 1...steps {
            let images = Discs.batch(batch, generator: &data)                                  // (B, 1, 16, 16)
            let (value, gradients) = valueAndGradients(of: { (model(images) - images).squared().mean() }, wrt: model.parameters)
            optimizer.step(gradients)
            loss = value
            if step == 1 { firstLoss = value }
            let elapsed = monotonicSeconds() - start
            let rate = Double(step * batch) / elapsed
            let eta = Double(steps - step) * elapsed / Double(step)
            progress.update("step \(step)/\(steps)  loss \(String(format: "%.4f", value))  \(String(format: "%.0f", rate)) images/s  ETA \(String(format: "%.0f", eta)) s",
                            force: step == steps)
        }
        progress.finish()
        guard loss.isFinite else { throw ValidationError("demo: training diverged (loss \(loss))") }
        model.setTraining(false)
        let samples = Discs.batch(8, generator: &data)                                          // (8, 1, 16, 16)
        let reconstructions = noGrad { model(samples) }                                         // (8, 1, 16, 16)
        let path = try PictureWriter.writeGrid(rows: [samples, reconstructions], to: URL(fileURLWithPath: out), name: "reconstructions.pgm")
        print("demo: mean squared error \(String(format: "%.4f", firstLoss)) → \(String(format: "%.4f", loss)); inputs (top) and reconstructions (bottom) written to \(path)")
    }
}

/// Encoder 1→16→32 channels at 16→8→4 pixels, decoder back up to 16x16 in [−1, 1].
final class Autoencoder: Module {
    var isTraining = true
    let down1: Conv2d, norm1: BatchNorm2d, down2: Conv2d, norm2: BatchNorm2d
    let up1: ConvTranspose2d, norm3: BatchNorm2d, up2: ConvTranspose2d

    init(generator: inout RandomGenerator) {
        down1 = Conv2d(inputs: 1, outputs: 16, kernel: 4, stride: 2, padding: 1, generator: &generator)
        norm1 = BatchNorm2d(channels: 16)
        down2 = Conv2d(inputs: 16, outputs: 32, kernel: 4, stride: 2, padding: 1, generator: &generator)
        norm2 = BatchNorm2d(channels: 32)
        up1 = ConvTranspose2d(inputs: 32, outputs: 16, kernel: 4, stride: 2, padding: 1, generator: &generator)
        norm3 = BatchNorm2d(channels: 16)
        up2 = ConvTranspose2d(inputs: 16, outputs: 1, kernel: 4, stride: 2, padding: 1, generator: &generator)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = norm1(down1(x)).leakyRelu(slope: 0.2)     // (B, 16, 8, 8)
        h = norm2(down2(h)).leakyRelu(slope: 0.2)         // (B, 32, 4, 4)
        h = norm3(up1(h)).relu()                          // (B, 16, 8, 8)
        return up2(h).tanh()                              // (B, 1, 16, 16)
    }
}

/// Synthetic images: one bright disc of random centre and radius on a dark background.
enum Discs {
    static func batch(_ count: Int, size: Int = 16, generator: inout RandomGenerator) -> Tensor {
        let parameters = generator.uniform(count: 3 * count)
        var pixels = [Float](repeating: -1, count: count * size * size)
        for image in 0..<count {
            let centerX = 3 + parameters[3 * image] * Float(size - 6)
            let centerY = 3 + parameters[3 * image + 1] * Float(size - 6)
            let radius = 2 + parameters[3 * image + 2] * 3
            for y in 0..<size {
                for x in 0..<size {
                    let distance = ((Float(x) - centerX) * (Float(x) - centerX) + (Float(y) - centerY) * (Float(y) - centerY)).squareRoot()
                    // A one-pixel soft edge keeps the target smooth.
                    pixels[(image * size + y) * size + x] = max(-1, min(1, 2 * (radius - distance) + 1))
                }
            }
        }
        return Tensor(shape: [count, 1, size, size], scalars: pixels)
    }
}

/// Writes image grids as binary PGM, atomically (a temporary file renamed when complete).
enum PictureWriter {
    /// Each row is a (N, 1, H, W) tensor in [−1, 1]; rows are stacked vertically, images side by side.
    static func writeGrid(rows: [Tensor], to folder: URL, name: String) throws -> String {
        let (count, height, width) = (rows[0].shape[0], rows[0].shape[2], rows[0].shape[3])
        let gridWidth = count * (width + 1) + 1, gridHeight = rows.count * (height + 1) + 1
        var pixels = [UInt8](repeating: 128, count: gridWidth * gridHeight)
        for (rowIndex, row) in rows.enumerated() {
            let values = row.scalars
            for image in 0..<count {
                for y in 0..<height {
                    for x in 0..<width {
                        let value = values[(image * height + y) * width + x]
                        let byte = UInt8(max(0, min(255, ((value + 1) * 127.5).rounded())))
                        pixels[(rowIndex * (height + 1) + 1 + y) * gridWidth + image * (width + 1) + 1 + x] = byte
                    }
                }
            }
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let destination = folder.appendingPathComponent(name)
        var data = Data("P5\n\(gridWidth) \(gridHeight)\n255\n".utf8)
        data.append(contentsOf: pixels)
        try data.write(to: destination, options: .atomic)
        return destination.path
    }
}
