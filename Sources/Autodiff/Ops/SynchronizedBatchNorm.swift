import FileFormats
import Kernels

// Batch normalisation over the batches of every rank of a process group, built from the fused
// batch-norm kernels: one pass for this rank's statistics, one collective to combine them, one
// pass to normalise; the backward adds to this rank's fused backward the terms that come from the
// other ranks' share of the statistics.

extension Tensor {
    /// Training-mode batch norm with the statistics of all ranks' batches together (every rank
    /// holds the same number of rows): y = (x − μ)/√(σ² + ε) · scale + shift, where μ and σ² are the
    /// mean and biased variance over the global batch. Returns y and μ, σ² (constants).
    ///
    /// Forward: each rank's mean and variance come from the fused kernel; one gather brings every
    /// rank's, combined in rank order (μ = mean of the μᵣ, σ² = mean of σᵣ² + (μᵣ − μ)²), so every
    /// rank holds bit-identical statistics. Backward: with x̂ = (x − μ)/σ and M the global count,
    /// dx = scale/σ · (dy − Σdy/M − x̂ · Σ(dy·x̂)/M), sums over every rank. The fused backward with
    /// the global μ, σ gives that with this rank's sums and count Mᵣ; the difference,
    /// scale/σ · ((aᵣ/Mᵣ − A/M) + x̂ (bᵣ/Mᵣ − B/M)) for aᵣ = Σdy, bᵣ = Σdy·x̂ here and A, B across
    /// ranks, is affine in x̂ per channel: batch-norm inference computes it in one pass. The
    /// gradients of scale and shift are this rank's sums, as for any parameter before averaging.
    public static func synchronizedBatchNormTraining(
        _ input: Tensor, scale: Tensor?, shift: Tensor?, epsilon: Float, group: any ProcessGroup
    ) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let channels = input.shape[1]
        require(
            input.rank == 4 || input.rank == 2, "synchronizedBatchNormTraining: input must be (N, C, H, W) or (N, C)")
        let statistics = noGrad { batchNormTraining(input, scale: nil, shift: nil, epsilon: epsilon) }
        let (mean, variance) = combinedStatistics(
            mean: statistics.mean.scalars, variance: statistics.variance.scalars, group: group)
        let meanTensor = Tensor(shape: [channels], scalars: mean)  // (C)
        let varianceTensor = Tensor(shape: [channels], scalars: variance)  // (C)
        let output = noGrad {
            batchNormInference(
                input, mean: meanTensor, variance: varianceTensor, scale: scale?.detached(), shift: shift?.detached(),
                epsilon: epsilon)
        }  // like input
        let g = validated {
            try BatchNormGeometry(
                batch: input.shape[0], channels: channels, spatial: input.count / (input.shape[0] * channels),
                epsilon: epsilon)
        }
        let backend = EngineContext.backend
        let x = input.storage
        let scaleValues = scale?.scalars ?? [Float](repeating: 1, count: channels)
        let hasScale = scale != nil
        let inputs = [input] + (scale.map { [$0] } ?? []) + (shift.map { [$0] } ?? [])
        let y = record("synchronizedBatchNormTraining", shape: input.shape, storage: output.storage, inputs: inputs) {
            gradient, wanted in
            // This rank's fused backward; its dscale and dshift are bᵣ and aᵣ.
            let local = backend.batchNormBackward(
                g, input: x, outputGradient: gradient.storage, mean: meanTensor.storage,
                variance: varianceTensor.storage,
                scale: Tensor(shape: [channels], scalars: scaleValues).storage, withParameters: true)
            let shiftGradient = Tensor(shape: [channels], storage: local.shift!)  // (C) aᵣ
            let scaleGradient = Tensor(shape: [channels], storage: local.scale!)  // (C) bᵣ
            let sums = group.sum(shiftGradient.scalars + scaleGradient.scalars)  // (2C) A, B
            let (rankCount, globalCount) = (Float(g.reductionSize), Float(g.reductionSize * group.size))
            var correctionScale = [Float](repeating: 0, count: channels)
            var correctionShift = [Float](repeating: 0, count: channels)
            for c in 0..<channels {
                let gain = scaleValues[c] / (variance[c] + epsilon).squareRoot()
                correctionShift[c] = gain * (shiftGradient.scalars[c] / rankCount - sums[c] / globalCount)
                correctionScale[c] = gain * (scaleGradient.scalars[c] / rankCount - sums[channels + c] / globalCount)
            }
            var gradients: [Tensor?] = [nil]
            if wanted[0] {
                let correction = noGrad {
                    batchNormInference(
                        input.detached(), mean: meanTensor, variance: varianceTensor,
                        scale: Tensor(shape: [channels], scalars: correctionScale),
                        shift: Tensor(shape: [channels], scalars: correctionShift), epsilon: epsilon)
                }  // like input
                let localInput = ResultPrecision.pointwise(local.input, operands: [x, gradient.storage])
                gradients[0] = Tensor(shape: input.shape, storage: localInput) + correction
            }
            if hasScale { gradients.append(scaleGradient) }
            if wanted.count > gradients.count { gradients.append(shiftGradient) }
            return gradients
        }
        return (y, meanTensor, varianceTensor)
    }

    /// The global mean and biased variance from every rank's (equal counts), in rank order.
    private static func combinedStatistics(mean: [Float], variance: [Float], group: any ProcessGroup)
        -> (mean: [Float], variance: [Float])
    {
        let channels = mean.count
        let mine = (mean + variance).withUnsafeBytes { Array($0) }
        let ranks = group.gather(mine).map { bytes in
            bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }  // N × (2C)
        var globalMean = [Float](repeating: 0, count: channels)
        var globalVariance = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let means = ranks.map { Double($0[c]) }
            let average = means.reduce(0, +) / Double(ranks.count)
            let spread = zip(ranks, means).reduce(0.0) { total, rank in
                total + Double(rank.0[channels + c]) + (rank.1 - average) * (rank.1 - average)
            }
            globalMean[c] = Float(average)
            globalVariance[c] = Float(spread / Double(ranks.count))
        }
        return (globalMean, globalVariance)
    }
}
