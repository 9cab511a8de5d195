import Autodiff
import NeuralNet
import Optimizers

// snippet: custom layer
/// Pixelwise feature normalisation (Karras et al. 2018): each pixel's feature vector scaled to unit
/// mean square. Built from tensor operations, so its gradient comes from theirs; it has no
/// parameters, and a layer that has them declares them as `Parameter` properties (named after them
/// in checkpoints).
final class PixelNorm: Layer {
    var isTraining = true
    let epsilon: Float

    init(epsilon: Float = 1e-8) { self.epsilon = epsilon }

    func callAsFunction(_ x: Tensor) -> Tensor {  // (N, C, H, W)
        x / (x.squared().mean(alongAxes: [1], keepingDimensions: true) + epsilon).sqrt()
    }

    var summary: String { "PixelNorm" }
}
// end snippet

/// Fits a 1x1 convolution followed by `PixelNorm` to a fixed target for `steps` Adam steps; returns
/// the first and last loss.
func fitWithCustomLayer(steps: Int) -> (first: Float, last: Float) {
    var random = RandomGenerator(seed: 1)
    let model = Sequential([Conv2d(inputs: 3, outputs: 8, kernel: 1, generator: &random), PixelNorm()])
    let images = Tensor.randomNormal([4, 3, 8, 8], generator: &random)  // (N, C, H, W)
    let target = Tensor.randomNormal([4, 8, 8, 8], generator: &random)
    // snippet: step
    var optimizer = Adam(parameters: model.parameters, learningRate: 1e-2)
    var losses: [Float] = []
    for _ in 0..<steps {
        let (loss, gradients) = valueAndGradients(
            of: { (model(images) - target).squared().mean() }, wrt: model.parameters)
        optimizer.step(gradients)
        losses.append(loss)
    }
    // end snippet
    return (losses[0], losses[losses.count - 1])
}
