// Hand-vectorised kernels the oneDNN backend needs and oneDNN 2.6 does not offer.
#ifndef SAGAN_KERNELS_H
#define SAGAN_KERNELS_H

#include <stdint.h>

/// Softmax down each column of a row-major (keys x queries) tile with row stride `stride`, in
/// place: tile[:, j] = softmax over i of tile[i, j]. The attention kernel keeps Pᵀ tiles so that
/// both of its large products are plain (untransposed) matrix products.
void sagan_softmax_columns(float *tile, int keys, int queries, int stride);

/// The column softmax without its last pass: tile[:, j] = exp(tile[:, j] − max) in place and
/// inverseSums[j] = 1 / Σ_i tile[i, j]; the caller scales a product of the tile instead (the
/// attention's output columns), which is cheaper than scaling the tile.
void sagan_softmax_columns_unnormalized(float *tile, int keys, int queries, int stride, float *inverseSums);

/// sagan_softmax_columns_unnormalized with each column's maximum given (as sagan_scores_bf16 finds it),
/// which skips its first pass; the same results when maxima[j] is column j's maximum.
void sagan_softmax_columns_exponentials(float *tile, int keys, int queries, int stride, const float *maxima,
                                        float *inverseSums);

/// maxima[j] = the largest of column j of a row-major (rows x columns) matrix with row stride `stride`:
/// the column softmax's first pass on its own, for sagan_scores_bf16's deeper products.
void sagan_column_maxima(const float *tile, int rows, int columns, long stride, float *maxima);

/// row[j] *= scales[j]: the attention output's columns by the inverse sums above.
void sagan_scale_row(float *row, const float *scales, int count);

/// The softmax backward down each column, in place on `gradient`:
/// gradient[i, j] = p[i, j] * (gradient[i, j] - Σ_k p[k, j] gradient[k, j]).
void sagan_softmax_columns_backward(const float *p, float *gradient, int keys, int queries, int stride);

/// The softmax backward from the unnormalised forward's tile: with p = e · inverseSums[j] per column,
/// gradient[i, j] = p[i, j] * (gradient[i, j] - Σ_k p[k, j] gradient[k, j]), in place.
void sagan_softmax_columns_backward_unnormalized(const float *e, float *gradient, int keys, int queries, int stride,
                                                 const float *inverseSums);

/// The bf16 attention's softmax backward with its results rounded as its products read them: from
/// the unnormalised forward's tile `e` and dP (keys x queries, row stride `stride`), P = e · inverseSums[j]
/// as bf16 rows (pRows, row stride pRowStride ≥ queries, zero-padded), and dS = P ⊙ (dP − colsum(P ⊙ dP))
/// both as key pairs (dsPairs, as sagan_pack_bf16_rows packs a (keys, queries) matrix) and as bf16 rows
/// (dsRows). Bit for bit what sagan_convert_bf16, sagan_softmax_columns_backward_unnormalized,
/// sagan_pack_bf16_rows and sagan_convert_bf16 give in turn (which the fallback runs); dP is scratch.
void sagan_softmax_columns_backward_bf16(const float *e, float *dP, int keys, int queries, int stride,
                                         const float *inverseSums, uint16_t *pRows, long pRowStride, uint32_t *dsPairs,
                                         uint16_t *dsRows, long dsRowStride);

/// Whether this CPU runs the AVX-512 versions (otherwise plain C with expf).
int sagan_kernels_use_avx512(void);

/// The plain C versions, whatever the CPU (the tests compare both).
void sagan_softmax_columns_portable(float *tile, int keys, int queries, int stride);
void sagan_softmax_columns_unnormalized_portable(float *tile, int keys, int queries, int stride, float *inverseSums);
void sagan_softmax_columns_backward_portable(const float *p, float *gradient, int keys, int queries, int stride);
void sagan_softmax_columns_backward_unnormalized_portable(const float *e, float *gradient, int keys, int queries,
                                                          int stride, const float *inverseSums);

/// Σ a[i]·b[i] in Float with 16 partial sums (combined in a fixed order).
float sagan_dot(const float *a, const float *b, long count);

/// y[j] += Σ_row x[row]·matrix[row, j] for the columns j in [begin, end) of a row-major
/// (rows, columns) matrix: a slice of y += matrixᵀ x, for spectral norm's power iteration.
void sagan_add_transposed_product(const float *matrix, long rows, long columns, const float *x, float *y, long begin,
                                  long end);

/// y[row] += Σ_j matrix[row, j]·x[j] for the rows in [begin, end): a slice of y += matrix x.
void sagan_add_row_products(const float *matrix, long columns, const float *x, float *y, long begin, long end);

/// y = x / divisor (a division, not a multiplication by 1/divisor, as PyTorch's W / σ).
void sagan_divide(const float *x, float divisor, float *y, long count);

/// Rows [rowBegin, rowEnd) of spectral norm's weight gradient for a weight stored as blocks of
/// (outputs, inner) rows: result[r, j] = (gradient[r, j] − λ·u[r mod outputs]·v[(r div outputs)·inner + j]) / σ.
void sagan_spectral_norm_gradient(const float *gradient, const float *u, const float *v, float lambda, float sigma,
                                  long outputs, long inner, float *result, long rowBegin, long rowEnd);

/// One Adam update's constants, as Kernels' AdamStep.
struct sagan_adam_step {
    float learningRate, beta1, beta2, epsilon, correction1, correction2;
};

/// Adam on `count` elements (PyTorch's form, see AdamStep); first and second may be NULL (zeros).
void sagan_adam_update(const struct sagan_adam_step *step, long count, const float *parameter, const float *gradient,
                       const float *first, const float *second, float *parameterOut, float *firstOut, float *secondOut);

/// One image from oneDNN's 16-channel-blocked layout (nChw16c: ceil(channels/16) blocks of
/// (positions, 16)) to planar: channel c at planar[c·planarStride ..< c·planarStride + positions].
void sagan_unblock16(const float *blocked, long channels, long positions, float *planar, long planarStride);

/// One image from planar to the 16-channel-blocked layout; padding channels of the last block are
/// written as zeros.
void sagan_block16(const float *planar, long planarStride, long channels, long positions, float *blocked);

/// sagan_unblock16 and sagan_block16 for a blocked layout of bf16 elements: unblocking widens each
/// to Float32, blocking rounds each to bf16 (to nearest even, subnormals kept, as sagan_round_bf16).
void sagan_unblock16_bf16(const uint16_t *blocked, long channels, long positions, float *planar, long planarStride);
void sagan_block16_bf16(const float *planar, long planarStride, long channels, long positions, uint16_t *blocked);

/// The plain C versions, whatever the CPU (the tests compare both).
void sagan_unblock16_portable(const float *blocked, long channels, long positions, float *planar, long planarStride);
void sagan_block16_portable(const float *planar, long planarStride, long channels, long positions, float *blocked);
void sagan_unblock16_bf16_portable(const uint16_t *blocked, long channels, long positions, float *planar,
                                   long planarStride);
void sagan_block16_bf16_portable(const float *planar, long planarStride, long channels, long positions,
                                 uint16_t *blocked);

/// A bf16 blocked image's channels in pairs, without widening: pairs[p·pairStride + j] holds channels
/// 2p and 2p + 1 at position j (low half first; a padded block's zeros past an odd count), the
/// operand layout of sagan_direct_convolution_forward_bf16.
void sagan_unblock16_bf16_pairs(const uint16_t *blocked, long channels, long positions, uint32_t *pairs,
                                long pairStride);
void sagan_unblock16_bf16_pairs_portable(const uint16_t *blocked, long channels, long positions, uint32_t *pairs,
                                         long pairStride);

/// OIHW convolution weights with 4x4 kernels (outputs and inputs multiples of 16) to oneDNN's
/// OIhw16i16o (outputFastest = 1, "ABcd16b16a") or OIhw16o16i (outputFastest = 0, "ABcd16a16b"),
/// output-channel blocks [firstBlock, endBlock) of 16. AVX-512 only: call when
/// sagan_kernels_use_avx512() says so.
/// Each element is divided by `divisor` on the way (spectral norm's W/σ; 1 for a plain move).
void sagan_weights_to_blocked16(const float *plain, long outputs, long inputs, int outputFastest, float divisor,
                                float *blocked, long firstBlock, long endBlock);

/// Between OIhw16i16o and OIhw16o16i (either way: the inner 16x16 block is transposed).
void sagan_weights_swap_blocked16(const float *source, long outputs, long inputs, float *destination, long firstBlock,
                                  long endBlock);

/// sagan_weights_to_blocked16 into the bf16 layouts of oneDNN's bf16 convolutions: OIhw8i16o2i
/// (outputFastest = 1, "ABcd8b16a2b", forward) or OIhw8o16i2o (outputFastest = 0, "ABcd8a16b2a",
/// backward data), each element divided by `divisor` and rounded as sagan_round_bf16 does; a
/// 32-bit word holds two channels of the paired axis. AVX-512 only.
void sagan_weights_to_blocked16_bf16(const float *plain, long outputs, long inputs, int outputFastest, float divisor,
                                     uint32_t *blocked, long firstBlock, long endBlock);

/// Between OIhw8i16o2i and OIhw8o16i2o in bf16 (either way), exactly. AVX-512 only.
void sagan_weights_swap_blocked16_bf16(const uint32_t *source, long outputs, long inputs, uint32_t *destination,
                                       long firstBlock, long endBlock);

/// One phase (py, px) of a 4x4 stride-2 convolution's input gradient as a 2x2 stride-1 convolution
/// of dy: from W (outputs, inputs, 4, 4) in OIhw8i16o2i to its kernel K (inputs, outputs, 2, 2) in
/// the same layout (K's outputs are W's inputs), K[i][o][ty][tx] = W[o][i][3 − py − 2ty][3 − px − 2tx],
/// each 16x16 square transposed as sagan_weights_swap_blocked16_bf16 does; K's output blocks
/// [firstBlock, endBlock). AVX-512 only.
void sagan_phase_weights_bf16(const uint32_t *weight, long outputs, long inputs, int py, int px, uint32_t *kernel,
                              long firstBlock, long endBlock);

/// Phase (py, px) of dx into dx, both bf16 in 16-channel blocks: (planes, height, width, 16) to rows
/// 2i + py and columns 2j + px of (planes, 2·height, 2·width, 16), planes = images × channel blocks.
void sagan_interleave_phase_blocked16_bf16(const uint16_t *phase, long planes, long height, long width, int py, int px,
                                           uint16_t *destination);

/// The inverse of sagan_weights_to_blocked16 (a weight gradient back to OIHW).
void sagan_weights_from_blocked16(const float *blocked, long outputs, long inputs, int outputFastest, float *plain,
                                  long firstBlock, long endBlock);

/// A stride-1 convolution of one image in planar (channels, height, width) layout with zero
/// padding: output height = height + 2·padHeight − kernelHeight + 1, likewise the width. Channels
/// of the input and of the output (or output gradient) lie a given number of floats apart, at least
/// height·width: padding them keeps channels 4 KiB multiples apart from sharing cache sets.
struct sagan_direct_convolution {
    long inputChannels, height, width, inputChannelStride;
    long outputChannels, outputHeight, outputWidth, outputChannelStride;
    long kernelHeight, kernelWidth, padHeight, padWidth;
};

/// output (outputChannels, outputHeight, outputWidth) = conv(input, weight) + bias (bias may be
/// NULL); weight is (outputChannels, inputChannels, kernelHeight, kernelWidth). Vectorised along
/// the width, so it suits few output channels, which oneDNN would pad to 16.
void sagan_direct_convolution_forward(const struct sagan_direct_convolution *convolution, const float *input,
                                      const float *weight, const float *bias, float *output);

/// One image's weight gradient (written, not added) and, unless NULL, bias gradient.
void sagan_direct_convolution_weight_gradient(const struct sagan_direct_convolution *convolution, const float *input,
                                              const float *outputGradient, float *weightGradient, float *biasGradient);

/// The forward on bf16 operands: input channels in pairs, pair p's plane of 32-bit words (channel
/// 2p in the low half, 2p + 1 in the high; 0 past an odd count) at input + p·inputChannelStride
/// words, and weights (outputChannels, pairs, kernelHeight, kernelWidth) in words paired the same
/// way. Products on vdpbf16ps, Float32 sums: AVX512_BF16 only (sagan_kernels_use_avx512_bf16).
void sagan_direct_convolution_forward_bf16(const struct sagan_direct_convolution *convolution, const uint32_t *input,
                                           const uint32_t *weight, const float *bias, float *output);

/// The weight gradient from bf16 planes (input channels inputChannelStride elements apart, output
/// gradient channels outputChannelStride apart): neighbouring columns' products pair up on
/// vdpbf16ps, Float32 sums. AVX512_BF16 only.
void sagan_direct_convolution_weight_gradient_bf16(const struct sagan_direct_convolution *convolution,
                                                   const uint16_t *input, const uint16_t *outputGradient,
                                                   float *weightGradient, float *biasGradient);

/// The plain C versions, whatever the CPU (the tests compare both).
void sagan_direct_convolution_forward_portable(const struct sagan_direct_convolution *convolution, const float *input,
                                               const float *weight, const float *bias, float *output);
void sagan_direct_convolution_weight_gradient_portable(const struct sagan_direct_convolution *convolution,
                                                       const float *input, const float *outputGradient,
                                                       float *weightGradient, float *biasGradient);

/// One phase of a stride-2 image: destination[c][2a][2b] = phase[c][a][b] for a < rows, b < columns
/// (the caller offsets destination by the phase's row and column parity). Strides in floats.
void sagan_interleave_phase(const float *phase, long channels, long rows, long columns, long phaseRowStride,
                            long phaseChannelStride, float *destination, long destinationRowStride,
                            long destinationChannelStride);

/// Rounds each element to the nearest bf16 value (ties to even), in place and still as Float32:
/// a Float32 product of two such values is exact, so Float32 kernels on rounded operands compute
/// what bf16 dot products with Float32 accumulation compute.
void sagan_round_bf16(float *data, long count);
/// sagan_round_bf16 in plain C: what the AVX-512 version is tested against.
void sagan_round_bf16_portable(float *data, long count);

/// Row-major Float32 (rows, columns), each column j scaled by scales[j] (unless NULL), to bf16
/// (rounded to nearest even), rows `destinationStride` apart, zero-padded from `columns` to the
/// stride: an A operand of sagan_gemm_bf16.
void sagan_convert_bf16(const float *source, long rows, long columns, long sourceStride, const float *scales,
                        uint16_t *destination, long destinationStride);

/// Float32 values that are bf16 values already (low 16 bits zero) as 16-bit bf16, exactly.
void sagan_bf16_halves(const float *values, long count, uint16_t *halves);

/// Planar channels of bf16 values (as Float32, planarStride apart) in pairs of channels, exactly:
/// pairs[p·pairStride + j] holds channel 2p's value at j in its low half and 2p + 1's in its high
/// half (0 past the last channel). The operand layout of sagan_direct_convolution_forward_bf16.
void sagan_pair_bf16_channels(const float *planar, long channels, long positions, long planarStride, uint32_t *pairs,
                              long pairStride);

/// A B operand of sagan_gemm_bf16 from row-major Float32 (depth, columns) with row stride
/// `sourceStride`, each column j scaled by scales[j] (unless NULL) and rounded: packed (⌈depth/2⌉,
/// columns) pairs, packed[p][j] = bf16(source[2p][j]) | bf16(source[2p+1][j]) << 16 (0 past depth).
void sagan_pack_bf16_rows(const float *source, long depth, long columns, long sourceStride, const float *scales,
                          uint32_t *packed);

/// C (m, n; row stride ldc) = A · B, or C += A · B when `accumulate`, with bf16 operands and Float32
/// accumulation. A is m rows of `pairs` bf16 pairs (the depth, two by two), pair p of row i at
/// a[i·rowStride + p·pairStride]: a row-major bf16 matrix of even row length 2·rowStride has
/// pairStride 1; a matrix packed as sagan_pack_bf16_rows writes it, read transposed, has rowStride 1
/// and pairStride its column count. B is packed pairs (pairs, n) as sagan_pack_bf16_rows writes
/// them. Runs on vdpbf16ps where the CPU has AVX512_BF16.
void sagan_gemm_bf16(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                     const uint32_t *packedB, float *c, long ldc, int accumulate);

/// The attention's scores tile: C (m, n; row stride ldc) = A · B as sagan_gemm_bf16 computes it (A
/// and B as there, no accumulation) and maxima[j] = max_i C[i, j], the softmax's first pass taken
/// from the registers. Depths of at most 4 pairs (C/8 ≤ 8) keep B's block in registers, where
/// sagan_gemm_bf16 reloads it for every block of rows (a 1024 x 128 tile of depth 4 on a Zen 4 core:
/// 12–13 us for sagan_gemm_bf16 and 5 for a maxima pass; 9.5–11.5 us here).
void sagan_scores_bf16(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                       const uint32_t *packedB, float *c, long ldc, float *maxima);

/// One image's patch rows, for a convolution's weight gradient as one matrix product: row
/// oy·outputWidth + ox of `rows` (rowStride elements apart) holds the bf16 input values output
/// position (oy, ox) reads, in the weight's order (channel, kernel row, kernel column). `padded` is
/// the planar image (channels, paddedHeight, paddedWidth) with the convolution's padding as zeros
/// around it, so that each window starts at (oy·stride, ox·stride).
void sagan_patch_rows_bf16(const uint16_t *padded, long channels, long paddedHeight, long paddedWidth,
                           long kernelHeight, long kernelWidth, long stride, long outputHeight, long outputWidth,
                           uint16_t *rows, long rowStride);

/// sums[i] = the Float32 sum of row i of a row-major bf16 matrix.
void sagan_bf16_row_sums(const uint16_t *matrix, long rows, long columns, float *sums);

/// destination[j][i] = source[i][j] for 32-bit elements (bf16 pairs) or Float32s.
void sagan_transpose_pairs(const uint32_t *source, long rows, long columns, long sourceStride, uint32_t *destination,
                           long destinationStride);
void sagan_transpose(const float *source, long rows, long columns, long sourceStride, float *destination,
                     long destinationStride);

/// The plain C versions, whatever the CPU (the tests compare both), and whether the CPU runs the others.
void sagan_scores_bf16_portable(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                                const uint32_t *packedB, float *c, long ldc, float *maxima);
void sagan_column_maxima_portable(const float *tile, int rows, int columns, long stride, float *maxima);
void sagan_pack_bf16_rows_portable(const float *source, long depth, long columns, long sourceStride,
                                   const float *scales, uint32_t *packed);
void sagan_gemm_bf16_portable(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                              const uint32_t *packedB, float *c, long ldc, int accumulate);
int sagan_kernels_use_avx512_bf16(void);

#endif
