import FileFormats
import Kernels

// Batch normalisation over NCHW tensors (per channel, across N, H and W).

extension Tensor {
    private static func batchNormGeometry(_ input: Tensor, _ epsilon: Float, _ op: String) -> BatchNormGeometry {
        require(input.rank == 4 || input.rank == 2, "\(op): input must be (N, C, H, W) or (N, C), got \(input.shape)")
        let spatial = input.rank == 4 ? input.shape[2] * input.shape[3] : 1
        return validated {
            try BatchNormGeometry(batch: input.shape[0], channels: input.shape[1], spatial: spatial, epsilon: epsilon)
        }
    }

    private static func checkParameter(_ p: Tensor?, _ name: String, _ g: BatchNormGeometry, _ op: String) {
        require(
            p == nil || p!.shape == [g.channels],
            "\(op): \(name) shape \(p?.shape ?? []) does not match \(g.channels) channels")
    }

    /// Normalises with the batch's own statistics: y = (x − mean)/√(var + ε) · scale + shift.
    /// Returns y and the per-channel batch mean and biased variance (constants, for running statistics).
    public static func batchNormTraining(_ input: Tensor, scale: Tensor?, shift: Tensor?, epsilon: Float)
        -> (output: Tensor, mean: Tensor, variance: Tensor)
    {
        let g = batchNormGeometry(input, epsilon, "batchNormTraining")
        checkParameter(scale, "scale", g, "batchNormTraining")
        checkParameter(shift, "shift", g, "batchNormTraining")
        let backend = EngineContext.backend
        let x = input.storage
        let (unrounded, mean, variance) = backend.batchNormTraining(
            g, input: x, scale: scale?.storage, shift: shift?.storage)
        let output = ResultPrecision.pointwise(unrounded, operands: [x])
        let scaleStorage = scale?.storage
        let hasScale = scale != nil
        let inputs = [input] + (scale.map { [$0] } ?? []) + (shift.map { [$0] } ?? [])
        let y = record("batchNormTraining", shape: input.shape, storage: output, inputs: inputs) { gradient, wanted in
            let wantsParameters = wanted.dropFirst().contains(true)
            let result = backend.batchNormBackward(
                g, input: x, outputGradient: gradient.storage, mean: mean, variance: variance,
                scale: scaleStorage, withParameters: wantsParameters)
            let dx = ResultPrecision.pointwise(result.input, operands: [x, gradient.storage])
            var gradients: [Tensor?] = [wanted[0] ? Tensor(shape: gradient.shape, storage: dx) : nil]
            if hasScale { gradients.append(result.scale.map { Tensor(shape: [g.channels], storage: $0) }) }
            if wanted.count > gradients.count {
                gradients.append(result.shift.map { Tensor(shape: [g.channels], storage: $0) })
            }
            return gradients
        }
        return (y, Tensor(shape: [g.channels], storage: mean), Tensor(shape: [g.channels], storage: variance))
    }

    /// Normalises with given statistics (treated as constants): y = (x − mean)/√(var + ε) · scale + shift.
    public static func batchNormInference(
        _ input: Tensor, mean: Tensor, variance: Tensor, scale: Tensor?, shift: Tensor?, epsilon: Float
    ) -> Tensor {
        let g = batchNormGeometry(input, epsilon, "batchNormInference")
        checkParameter(scale, "scale", g, "batchNormInference")
        checkParameter(shift, "shift", g, "batchNormInference")
        checkParameter(mean, "mean", g, "batchNormInference")
        checkParameter(variance, "variance", g, "batchNormInference")
        let backend = EngineContext.backend
        let output = ResultPrecision.pointwise(
            backend.batchNormInference(
                g, input: input.storage, mean: mean.storage, variance: variance.storage, scale: scale?.storage,
                shift: shift?.storage),
            operands: [input.storage])
        let channelShape = input.rank == 4 ? [1, g.channels, 1, 1] : [1, g.channels]
        let reduceAxes = input.rank == 4 ? [0, 2, 3] : [0]
        let (inputValue, meanValue, varianceValue) = (input.detached(), mean.detached(), variance.detached())
        let scaleValue = scale?.detached()
        let inputs = [input] + (scale.map { [$0] } ?? []) + (shift.map { [$0] } ?? [])
        // The backward's terms are formed only when it runs: under noGrad (Inception) they would cost
        // two full passes over every activation.
        return record("batchNormInference", shape: input.shape, storage: output, inputs: inputs) { gradient, wanted in
            var gradients: [Tensor?] = []
            let deviation = (varianceValue + epsilon).sqrt().reshaped(to: channelShape)  // (1, C, 1, 1) or (1, C)
            let gain = scaleValue.map { $0.reshaped(to: channelShape) / deviation } ?? (1 / deviation)
            gradients.append(wanted[0] ? gradient * gain : nil)
            if scaleValue != nil {
                let normalized = wanted[1] ? (inputValue - meanValue.reshaped(to: channelShape)) / deviation : nil
                gradients.append(normalized.map { (gradient * $0).sum(alongAxes: reduceAxes) })
            }
            if wanted.count > gradients.count {
                gradients.append(wanted[gradients.count] ? gradient.sum(alongAxes: reduceAxes) : nil)
            }
            return gradients
        }
    }
}

extension Float {
    static func / (s: Float, x: Tensor) -> Tensor { Tensor.full(x.shape, s) / x }
}
