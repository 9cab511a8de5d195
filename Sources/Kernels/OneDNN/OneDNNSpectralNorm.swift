import CDNNL
import CKernels

/// Spectral normalisation in three passes over the weight forward (Wᵀu, W v, W/σ) and two backward
/// (the inner product ⟨Ḡ, W⟩, the gradient) instead of a dozen separate kernels with their
/// temporaries. Every pass is split into fixed chunks, so results do not depend on threads. A
/// 4x4 convolution weight comes out in the blocked layout oneDNN's forward convolutions read
/// (the division, and under bf16 the rounding, done on the way), which saves its consumers a
/// reorder: under bf16 one from Float32 per convolution per step (blog128, batch 16: 17 of them).
extension OneDNNBackend {
    public func spectralNorm(_ g: SpectralNormGeometry, weight: Storage, u: Storage, v: Storage, powerIteration: Bool)
        -> (weight: Storage, sigma: Float, u: Storage, v: Storage)
    {
        let (w, uIn, vIn) = (plain(weight), plain(u), plain(v))
        let bf16 = g.precision == .bf16
        // A 4x4 convolution weight goes straight into the layout forward convolutions read.
        let blocked = g.weightShape.flatMap { shape in
            WeightBlocks.handles(shape)
                ? runtime.layout(
                    shape, WeightBlocks.blockedDescriptor(shape, bf16 ? .outputFastestBF16 : .outputFastest)) : nil
        }
        let normalized =
            blocked.map { Storage(count: g.count, layout: $0) }
            ?? Storage(uninitializedCount: g.count, precision: g.precision)
        return withExtendedLifetime((w, uIn, vIn)) {
            var (newU, newV) = (uIn, vIn)
            if powerIteration {
                newV = l2Normalized(transposedProduct(g, w.pointer, uIn.pointer), epsilon: g.epsilon)
            }
            let forward = product(g, w.pointer, newV.pointer)  // (outputs)
            if powerIteration { newU = l2Normalized(forward, epsilon: g.epsilon) }
            let sigma = sagan_dot(newU.pointer, forward.pointer, g.outputs)
            if let shape = g.weightShape, blocked != nil {
                let words = bf16Pairs(normalized.pointer)
                runtime.forEachItemInParallel(shape[0] / 16) { block, _, _ in
                    if bf16 {
                        sagan_weights_to_blocked16_bf16(
                            w.pointer, shape[0], shape[1], 1, sigma, words, block, block + 1)
                    } else {
                        sagan_weights_to_blocked16(
                            w.pointer, shape[0], shape[1], 1, sigma, normalized.pointer, block, block + 1)
                    }
                }
            } else {
                let chunk = 1 << 16
                runtime.forEachItemInParallel((g.count + chunk - 1) / chunk) { item, _, _ in
                    let (start, count) = (item * chunk, min(chunk, g.count - item * chunk))
                    sagan_divide(w.pointer + start, sigma, normalized.pointer + start, count)
                    if bf16 { sagan_round_bf16(normalized.pointer + start, count) }
                }
            }
            return (normalized, sigma, newU, newV)
        }
    }

    public func spectralNormBackward(
        _ g: SpectralNormGeometry, weight: Storage, outputGradient: Storage, u: Storage, v: Storage,
        sigma: Float
    ) -> Storage {
        let (w, gradient, uIn, vIn) = (plain(weight), plain(outputGradient), plain(u), plain(v))
        let result = Storage(uninitializedCount: g.count)
        withExtendedLifetime((w, gradient, uIn, vIn)) {
            let chunk = 1 << 16
            let chunks = (g.count + chunk - 1) / chunk
            var partials = [Float](repeating: 0, count: chunks)
            partials.withUnsafeMutableBufferPointer { partials in
                runtime.forEachItemInParallel(chunks) { item, _, _ in
                    let start = item * chunk
                    partials[item] = sagan_dot(gradient.pointer + start, w.pointer + start, min(chunk, g.count - start))
                }
            }
            let lambda = Float(partials.reduce(0.0) { $0 + Double($1) } / Double(sigma))
            let rows = g.blocks * g.outputs
            let rowsPerItem = max(1, chunk / g.inner)
            runtime.forEachItemInParallel((rows + rowsPerItem - 1) / rowsPerItem) { item, _, _ in
                sagan_spectral_norm_gradient(
                    gradient.pointer, uIn.pointer, vIn.pointer, lambda, sigma, g.outputs, g.inner, result.pointer,
                    item * rowsPerItem, min(rows, (item + 1) * rowsPerItem))
            }
        }
        return result
    }

    /// Wᵀ x (blocks·inner), each block's columns in slices.
    private func transposedProduct(
        _ g: SpectralNormGeometry, _ w: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>
    ) -> Storage {
        let result = Storage(zeros: g.rightCount)
        let slice = min(g.inner, 4096, max(64, (g.inner / 8 + 15) / 16 * 16))
        let slicesPerBlock = (g.inner + slice - 1) / slice
        runtime.forEachItemInParallel(g.blocks * slicesPerBlock) { item, _, _ in
            let (block, start) = (item / slicesPerBlock, item % slicesPerBlock * slice)
            sagan_add_transposed_product(
                w + block * g.outputs * g.inner, g.outputs, g.inner, x, result.pointer + block * g.inner,
                start, min(g.inner, start + slice))
        }
        return result
    }

    /// W x (outputs), in slices of rows, each summed over the blocks in order.
    private func product(_ g: SpectralNormGeometry, _ w: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>)
        -> Storage
    {
        let result = Storage(zeros: g.outputs)
        let slice = 64
        runtime.forEachItemInParallel((g.outputs + slice - 1) / slice) { item, _, _ in
            for block in 0..<g.blocks {
                sagan_add_row_products(
                    w + block * g.outputs * g.inner, g.inner, x + block * g.inner, result.pointer,
                    item * slice, min(g.outputs, (item + 1) * slice))
            }
        }
        return result
    }

    /// x / (‖x‖ + ε), the norm summed in Double.
    private func l2Normalized(_ x: Storage, epsilon: Float) -> Storage {
        let values = UnsafeBufferPointer(start: x.pointer, count: x.count)
        let norm = Float(values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()) + epsilon
        let result = Storage(uninitializedCount: x.count)
        sagan_divide(x.pointer, norm, result.pointer, x.count)
        return result
    }
}
