extension ReferenceKernels {
    /// Batch statistics per channel: mean and biased variance over N·H·W, then
    /// y = (x − mean) / √(var + ε) · scale + shift (scale 1 and shift 0 when absent).
    public static func batchNormTraining<T: ReferenceScalar>(
        _ g: BatchNormGeometry, y: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<T>,
        variance: UnsafeMutablePointer<T>, x: UnsafePointer<T>, scale: UnsafePointer<T>?, shift: UnsafePointer<T>?
    ) {
        let count = T(g.reductionSize)
        for c in 0..<g.channels {
            var sum: T = 0
            for n in 0..<g.batch {
                let base = (n * g.channels + c) * g.spatial
                for s in 0..<g.spatial { sum += x[base + s] }
            }
            let channelMean = sum / count
            var squares: T = 0
            for n in 0..<g.batch {
                let base = (n * g.channels + c) * g.spatial
                for s in 0..<g.spatial {
                    let centered = x[base + s] - channelMean
                    squares += centered * centered
                }
            }
            mean[c] = channelMean
            variance[c] = squares / count
        }
        batchNormInference(g, y: y, x: x, mean: mean, variance: variance, scale: scale, shift: shift)
    }

    /// y = (x − mean) / √(var + ε) · scale + shift with the given statistics.
    public static func batchNormInference<T: ReferenceScalar>(
        _ g: BatchNormGeometry, y: UnsafeMutablePointer<T>, x: UnsafePointer<T>, mean: UnsafePointer<T>,
        variance: UnsafePointer<T>, scale: UnsafePointer<T>?, shift: UnsafePointer<T>?
    ) {
        for c in 0..<g.channels {
            let inverseDeviation = 1 / T.squareRoot(variance[c] + T(g.epsilon))
            let gain = (scale?[c] ?? 1) * inverseDeviation
            let offset = (shift?[c] ?? 0) - mean[c] * gain
            for n in 0..<g.batch {
                let base = (n * g.channels + c) * g.spatial
                for s in 0..<g.spatial { y[base + s] = x[base + s] * gain + offset }
            }
        }
    }

    /// Backward through batch statistics, with x̂ = (x − mean)/√(var + ε) and M = N·H·W:
    /// dshift = Σ dy, dscale = Σ dy·x̂, dx = scale/√(var + ε) · (dy − dshift/M − x̂·dscale/M).
    public static func batchNormBackward<T: ReferenceScalar>(
        _ g: BatchNormGeometry, dx: UnsafeMutablePointer<T>, dScale: UnsafeMutablePointer<T>?,
        dShift: UnsafeMutablePointer<T>?, dy: UnsafePointer<T>, x: UnsafePointer<T>,
        mean: UnsafePointer<T>, variance: UnsafePointer<T>, scale: UnsafePointer<T>?
    ) {
        let count = T(g.reductionSize)
        for c in 0..<g.channels {
            let inverseDeviation = 1 / T.squareRoot(variance[c] + T(g.epsilon))
            var sumGradient: T = 0
            var sumGradientNormalized: T = 0
            for n in 0..<g.batch {
                let base = (n * g.channels + c) * g.spatial
                for s in 0..<g.spatial {
                    sumGradient += dy[base + s]
                    sumGradientNormalized += dy[base + s] * (x[base + s] - mean[c]) * inverseDeviation
                }
            }
            dShift?[c] = sumGradient
            dScale?[c] = sumGradientNormalized
            let gain = (scale?[c] ?? 1) * inverseDeviation
            for n in 0..<g.batch {
                let base = (n * g.channels + c) * g.spatial
                for s in 0..<g.spatial {
                    let normalized = (x[base + s] - mean[c]) * inverseDeviation
                    dx[base + s] =
                        gain * (dy[base + s] - sumGradient / count - normalized * sumGradientNormalized / count)
                }
            }
        }
    }
}
