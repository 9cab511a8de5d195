// Stride-1 convolutions of one image in planar (channels, height, width) layout, for layers with few
// output channels (a generator's RGB output): oneDNN pads such outputs to a block of 16 channels and
// computes all 16. These vectorise along the width instead, four output channels at a time.
// An AVX-512 version (chosen at run time) and a plain one with the same results up to rounding.
#include "kernels.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>

/// A table of `count` load masks on the heap. Not a variable-length array: beside 64-byte vector
/// temporaries, a VLA left an unoptimised build's stack misaligned and its aligned spills faulted.
static __mmask16 *mask_table(long count) {
    __mmask16 *table = malloc((size_t)(count > 0 ? count : 1) * sizeof(__mmask16));
    if (!table) {
        fprintf(stderr, "direct convolution: cannot allocate %ld load masks\n", count);
        abort();
    }
    return table;
}

// ---- plain C (any CPU) ----

static void forward_plain(const struct sagan_direct_convolution *c, const float *input, const float *weight,
                          const float *bias, float *output) {
    for (long o = 0; o < c->outputChannels; o++) {
        for (long yo = 0; yo < c->outputHeight; yo++) {
            for (long xo = 0; xo < c->outputWidth; xo++) {
                float sum = bias ? bias[o] : 0;
                for (long i = 0; i < c->inputChannels; i++) {
                    for (long ky = 0; ky < c->kernelHeight; ky++) {
                        const long yi = yo + ky - c->padHeight;
                        if (yi < 0 || yi >= c->height) continue;
                        for (long kx = 0; kx < c->kernelWidth; kx++) {
                            const long xi = xo + kx - c->padWidth;
                            if (xi < 0 || xi >= c->width) continue;
                            sum += input[i * c->inputChannelStride + yi * c->width + xi]
                                 * weight[((o * c->inputChannels + i) * c->kernelHeight + ky) * c->kernelWidth + kx];
                        }
                    }
                }
                output[o * c->outputChannelStride + yo * c->outputWidth + xo] = sum;
            }
        }
    }
}

static void weight_gradient_plain(const struct sagan_direct_convolution *c, const float *input,
                                  const float *outputGradient, float *weightGradient, float *biasGradient) {
    const long plane = c->outputHeight * c->outputWidth;
    for (long o = 0; o < c->outputChannels; o++) {
        const float *dy = outputGradient + o * c->outputChannelStride;
        if (biasGradient) {
            float sum = 0;
            for (long p = 0; p < plane; p++) sum += dy[p];
            biasGradient[o] = sum;
        }
        for (long i = 0; i < c->inputChannels; i++) {
            for (long ky = 0; ky < c->kernelHeight; ky++) {
                for (long kx = 0; kx < c->kernelWidth; kx++) {
                    float sum = 0;
                    for (long yo = 0; yo < c->outputHeight; yo++) {
                        const long yi = yo + ky - c->padHeight;
                        if (yi < 0 || yi >= c->height) continue;
                        for (long xo = 0; xo < c->outputWidth; xo++) {
                            const long xi = xo + kx - c->padWidth;
                            if (xi < 0 || xi >= c->width) continue;
                            sum += dy[yo * c->outputWidth + xo] * input[i * c->inputChannelStride + yi * c->width + xi];
                        }
                    }
                    weightGradient[((o * c->inputChannels + i) * c->kernelHeight + ky) * c->kernelWidth + kx] = sum;
                }
            }
        }
    }
}

// ---- AVX-512 ----

#define AVX512        __attribute__((target("avx512f")))
#define ALWAYS_INLINE __attribute__((always_inline)) inline

// Lanes l of a 16-wide vector starting at column `start` with 0 <= start + l < limit, and
// start + l < end (the last output column the vector covers).
static ALWAYS_INLINE __mmask16 columns(long start, long limit, long vectorStart, long end) {
    long low = -start, high = limit - start;
    if (end - vectorStart < high) high = end - vectorStart;
    if (low < 0) low = 0;
    if (high > 16) high = 16;
    if (high <= low) return 0;
    return (__mmask16)(((1u << high) - 1) & ~((1u << low) - 1));
}

// Output channels o0..o0+GROUP-1 of one output row, 64 columns (four vectors) at a time.
#define FORWARD_ROW(GROUP)                                                                                             \
    for (long x0 = 0; x0 < c->outputWidth; x0 += 64) {                                                                 \
        const __mmask16 *masks = loadMasks + x0 / 64 * 4 * c->kernelWidth;                                             \
        __m512 acc[GROUP][4];                                                                                          \
        for (int g = 0; g < GROUP; g++)                                                                                \
            for (int j = 0; j < 4; j++) acc[g][j] = _mm512_set1_ps(bias ? bias[o0 + g] : 0.0f);                        \
        for (long i = 0; i < c->inputChannels; i++) {                                                                  \
            for (long ky = 0; ky < c->kernelHeight; ky++) {                                                            \
                const long yi = yo + ky - c->padHeight;                                                                \
                if (yi < 0 || yi >= c->height) continue;                                                               \
                const float *row = input + i * c->inputChannelStride + yi * c->width;                                  \
                const float *taps = weight + (i * c->kernelHeight + ky) * c->kernelWidth;                              \
                for (long kx = 0; kx < c->kernelWidth; kx++) {                                                         \
                    __m512 v[4];                                                                                       \
                    for (int j = 0; j < 4; j++) {                                                                      \
                        const long start = x0 + 16 * j + kx - c->padWidth;                                             \
                        v[j] = _mm512_maskz_loadu_ps(masks[kx * 4 + j], row + start);                                  \
                    }                                                                                                  \
                    for (int g = 0; g < GROUP; g++) {                                                                  \
                        const __m512 w = _mm512_set1_ps(taps[(o0 + g) * weightStride + kx]);                           \
                        for (int j = 0; j < 4; j++) acc[g][j] = _mm512_fmadd_ps(w, v[j], acc[g][j]);                   \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int g = 0; g < GROUP; g++) {                                                                              \
            float *out = output + (o0 + g) * c->outputChannelStride + yo * c->outputWidth;                             \
            for (int j = 0; j < 4; j++) {                                                                              \
                const long start = x0 + 16 * j;                                                                        \
                _mm512_mask_storeu_ps(out + start, columns(start, c->outputWidth, start, c->outputWidth), acc[g][j]);  \
            }                                                                                                          \
        }                                                                                                              \
    }

AVX512 static void forward_avx512(const struct sagan_direct_convolution *c, const float *input, const float *weight,
                                  const float *bias, float *output) {
    const long weightStride = c->inputChannels * c->kernelHeight * c->kernelWidth;
    // The input columns each vector may load, by block of 64 output columns, kernel column and vector:
    // the same for every row and channel, so computed once.
    const long blocks = (c->outputWidth + 63) / 64;
    __mmask16 *loadMasks = mask_table(blocks * c->kernelWidth * 4);
    for (long block = 0; block < blocks; block++)
        for (long kx = 0; kx < c->kernelWidth; kx++)
            for (int j = 0; j < 4; j++) {
                const long first = block * 64 + 16 * j;
                loadMasks[(block * c->kernelWidth + kx) * 4 + j] =
                    columns(first + kx - c->padWidth, c->width, first, c->outputWidth);
            }
    for (long o0 = 0; o0 < c->outputChannels; o0 += 4) {
        const long group = c->outputChannels - o0 < 4 ? c->outputChannels - o0 : 4;
        for (long yo = 0; yo < c->outputHeight; yo++) {
            switch (group) {
            case 1:
                FORWARD_ROW(1) break;
            case 2:
                FORWARD_ROW(2) break;
            case 3:
                FORWARD_ROW(3) break;
            default:
                FORWARD_ROW(4) break;
            }
        }
    }
    free(loadMasks);
}

AVX512 static float sum16(__m512 v) {
    return _mm512_reduce_add_ps(v);
}

// Weight gradients of output channels o0..o0+GROUP-1 for one input channel and kernel row,
// columns kx0..kx0+TAPS-1 of the kernel: GROUP x TAPS accumulators over the whole image (both
// compile-time constants, so the accumulators stay in registers).
#define WEIGHT_GRADIENT_TAPS(GROUP, TAPS)                                                                              \
    {                                                                                                                  \
        const int taps = TAPS;                                                                                         \
        __m512 acc[GROUP][TAPS];                                                                                       \
        for (int g = 0; g < GROUP; g++)                                                                                \
            for (int k = 0; k < TAPS; k++) acc[g][k] = _mm512_setzero_ps();                                            \
        for (long yo = 0; yo < c->outputHeight; yo++) {                                                                \
            const long yi = yo + ky - c->padHeight;                                                                    \
            if (yi < 0 || yi >= c->height) continue;                                                                   \
            const float *row = input + i * c->inputChannelStride + yi * c->width;                                      \
            for (long x0 = 0; x0 < c->outputWidth; x0 += 16) {                                                         \
                const __mmask16 *masks = loadMasks + x0 / 16 * (c->kernelWidth + 1);                                   \
                const __mmask16 inside = masks[c->kernelWidth];                                                        \
                __m512 dy[GROUP];                                                                                      \
                for (int g = 0; g < GROUP; g++)                                                                        \
                    dy[g] = _mm512_maskz_loadu_ps(inside, outputGradient + (o0 + g) * c->outputChannelStride           \
                                                              + yo * c->outputWidth + x0);                             \
                for (int k = 0; k < taps; k++) {                                                                       \
                    const long start = x0 + kx0 + k - c->padWidth;                                                     \
                    const __m512 v = _mm512_maskz_loadu_ps(masks[kx0 + k], row + start);                               \
                    for (int g = 0; g < GROUP; g++) acc[g][k] = _mm512_fmadd_ps(dy[g], v, acc[g][k]);                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int g = 0; g < GROUP; g++)                                                                                \
            for (int k = 0; k < taps; k++)                                                                             \
                weightGradient[(((o0 + g) * c->inputChannels + i) * c->kernelHeight + ky) * c->kernelWidth + kx0       \
                               + k] = sum16(acc[g][k]);                                                                \
    }

AVX512 static void weight_gradient_avx512(const struct sagan_direct_convolution *c, const float *input,
                                          const float *outputGradient, float *weightGradient, float *biasGradient) {
    const long plane = c->outputHeight * c->outputWidth;
    // By vector of 16 output columns: the input columns each kernel column loads, then the output
    // columns themselves.
    const long vectors = (c->outputWidth + 15) / 16;
    __mmask16 *loadMasks = mask_table(vectors * (c->kernelWidth + 1));
    for (long vector = 0; vector < vectors; vector++) {
        const long first = vector * 16;
        for (long kx = 0; kx < c->kernelWidth; kx++)
            loadMasks[vector * (c->kernelWidth + 1) + kx] =
                columns(first + kx - c->padWidth, c->width, first, c->outputWidth);
        loadMasks[vector * (c->kernelWidth + 1) + c->kernelWidth] =
            columns(first, c->outputWidth, first, c->outputWidth);
    }
    if (biasGradient) {
        for (long o = 0; o < c->outputChannels; o++) {
            __m512 acc = _mm512_setzero_ps();
            for (long p = 0; p < plane; p += 16) {
                const __mmask16 inside = columns(p, plane, p, plane);
                acc =
                    _mm512_add_ps(acc, _mm512_maskz_loadu_ps(inside, outputGradient + o * c->outputChannelStride + p));
            }
            biasGradient[o] = sum16(acc);
        }
    }
    for (long o0 = 0; o0 < c->outputChannels; o0 += 4) {
        const long group = c->outputChannels - o0 < 4 ? c->outputChannels - o0 : 4;
        for (long i = 0; i < c->inputChannels; i++) {
            for (long ky = 0; ky < c->kernelHeight; ky++) {
                for (long kx0 = 0; kx0 < c->kernelWidth; kx0 += 4) {
                    const long taps = c->kernelWidth - kx0 < 4 ? c->kernelWidth - kx0 : 4;
                    switch (group * 4 + taps) {
                    case 5:
                        WEIGHT_GRADIENT_TAPS(1, 1) break;
                    case 6:
                        WEIGHT_GRADIENT_TAPS(1, 2) break;
                    case 7:
                        WEIGHT_GRADIENT_TAPS(1, 3) break;
                    case 8:
                        WEIGHT_GRADIENT_TAPS(1, 4) break;
                    case 9:
                        WEIGHT_GRADIENT_TAPS(2, 1) break;
                    case 10:
                        WEIGHT_GRADIENT_TAPS(2, 2) break;
                    case 11:
                        WEIGHT_GRADIENT_TAPS(2, 3) break;
                    case 12:
                        WEIGHT_GRADIENT_TAPS(2, 4) break;
                    case 13:
                        WEIGHT_GRADIENT_TAPS(3, 1) break;
                    case 14:
                        WEIGHT_GRADIENT_TAPS(3, 2) break;
                    case 15:
                        WEIGHT_GRADIENT_TAPS(3, 3) break;
                    case 16:
                        WEIGHT_GRADIENT_TAPS(3, 4) break;
                    case 17:
                        WEIGHT_GRADIENT_TAPS(4, 1) break;
                    case 18:
                        WEIGHT_GRADIENT_TAPS(4, 2) break;
                    case 19:
                        WEIGHT_GRADIENT_TAPS(4, 3) break;
                    default:
                        WEIGHT_GRADIENT_TAPS(4, 4) break;
                    }
                }
            }
        }
    }
    free(loadMasks);
}

// ---- entry points ----

void sagan_direct_convolution_forward(const struct sagan_direct_convolution *c, const float *input, const float *weight,
                                      const float *bias, float *output) {
    if (sagan_kernels_use_avx512())
        forward_avx512(c, input, weight, bias, output);
    else
        forward_plain(c, input, weight, bias, output);
}

void sagan_direct_convolution_weight_gradient(const struct sagan_direct_convolution *c, const float *input,
                                              const float *outputGradient, float *weightGradient, float *biasGradient) {
    if (sagan_kernels_use_avx512())
        weight_gradient_avx512(c, input, outputGradient, weightGradient, biasGradient);
    else
        weight_gradient_plain(c, input, outputGradient, weightGradient, biasGradient);
}

void sagan_direct_convolution_forward_portable(const struct sagan_direct_convolution *c, const float *input,
                                               const float *weight, const float *bias, float *output) {
    forward_plain(c, input, weight, bias, output);
}

void sagan_direct_convolution_weight_gradient_portable(const struct sagan_direct_convolution *c, const float *input,
                                                       const float *outputGradient, float *weightGradient,
                                                       float *biasGradient) {
    weight_gradient_plain(c, input, outputGradient, weightGradient, biasGradient);
}
