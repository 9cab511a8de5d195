// Stride-1 convolutions of one image in planar (channels, height, width) layout, for layers with few
// output channels (a generator's RGB output): oneDNN pads such outputs to a block of 16 channels and
// computes all 16. These vectorise along the width instead, four output channels at a time.
// An AVX-512 version (chosen at run time) and a plain one with the same results up to rounding.
#include "bf16_rounding.h"
#include "kernels.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>

/// A table of `count` load masks on the heap. Not a variable-length array: beside 64-byte vector
/// temporaries, a VLA left an unoptimised build's stack misaligned and its aligned spills faulted.
static uint32_t *mask_table(long count) {
    uint32_t *table = malloc((size_t)(count > 0 ? count : 1) * sizeof(uint32_t));
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
//
// One body per kernel for both element types: Float32 (an FMA per input channel) and bf16, where a
// step of the depth is a pair of input channels (forward) or of positions (weight gradient) and one
// vdpbf16ps takes both, twice the work of an FMA at the same rate.

#define AVX512        __attribute__((target("avx512f")))
#define ALWAYS_INLINE __attribute__((always_inline)) inline

// Lanes l of a `lanes`-wide vector (16 or 32) starting at column `start` with 0 <= start + l < limit,
// and start + l < end (the last output column the vector covers).
static ALWAYS_INLINE uint32_t columns(long start, long limit, long vectorStart, long end, int lanes) {
    long low = -start, high = limit - start;
    if (end - vectorStart < high) high = end - vectorStart;
    if (low < 0) low = 0;
    if (high > lanes) high = lanes;
    if (high <= low) return 0;
    const uint32_t below = high >= 32 ? 0xFFFFFFFFu : (1u << high) - 1;
    return below & ~((1u << low) - 1);
}

AVX512 static ALWAYS_INLINE __m512 fma_step(__m512 sum, __m512 a, __m512 b) {
    return _mm512_fmadd_ps(a, b, sum);
}

AVX512_BF16 static ALWAYS_INLINE __m512 bf16_step(__m512 sum, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(sum, (__m512bh)a, (__m512bh)b);
}

AVX512_BF16 static ALWAYS_INLINE __m512i broadcast_word(uint32_t word) {
    return _mm512_set1_epi32((int)word);
}

// Output channels o0..o0+GROUP-1 of one output row, 64 columns (four vectors of 16) at a time. Each
// step of the depth LOADs 16 inputs (a channel's, or a channel pair's words), BROADCASTs a weight
// and STEP adds their products.
#define FORWARD_ROW(GROUP, VECTOR, ELEMENT, LOAD, BROADCAST, STEP)                                                     \
    for (long x0 = 0; x0 < c->outputWidth; x0 += 64) {                                                                 \
        const uint32_t *masks = loadMasks + x0 / 64 * 4 * c->kernelWidth;                                              \
        __m512 acc[GROUP][4];                                                                                          \
        for (int g = 0; g < GROUP; g++)                                                                                \
            for (int j = 0; j < 4; j++) acc[g][j] = _mm512_set1_ps(bias ? bias[o0 + g] : 0.0f);                        \
        for (long i = 0; i < depth; i++) {                                                                             \
            for (long ky = 0; ky < c->kernelHeight; ky++) {                                                            \
                const long yi = yo + ky - c->padHeight;                                                                \
                if (yi < 0 || yi >= c->height) continue;                                                               \
                const ELEMENT *row = input + i * c->inputChannelStride + yi * c->width;                                \
                const ELEMENT *taps = weight + (i * c->kernelHeight + ky) * c->kernelWidth;                            \
                for (long kx = 0; kx < c->kernelWidth; kx++) {                                                         \
                    VECTOR v[4];                                                                                       \
                    for (int j = 0; j < 4; j++) {                                                                      \
                        const long start = x0 + 16 * j + kx - c->padWidth;                                             \
                        v[j] = LOAD((__mmask16)masks[kx * 4 + j], row + start);                                        \
                    }                                                                                                  \
                    for (int g = 0; g < GROUP; g++) {                                                                  \
                        const VECTOR w = BROADCAST(taps[(o0 + g) * weightStride + kx]);                                \
                        for (int j = 0; j < 4; j++) acc[g][j] = STEP(acc[g][j], w, v[j]);                              \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int g = 0; g < GROUP; g++) {                                                                              \
            float *out = output + (o0 + g) * c->outputChannelStride + yo * c->outputWidth;                             \
            for (int j = 0; j < 4; j++) {                                                                              \
                const long start = x0 + 16 * j;                                                                        \
                _mm512_mask_storeu_ps(                                                                                 \
                    out + start, (__mmask16)columns(start, c->outputWidth, start, c->outputWidth, 16), acc[g][j]);     \
            }                                                                                                          \
        }                                                                                                              \
    }

// A whole image: `depth` steps (channels or channel pairs) of weights per output channel and tap.
// The input columns each vector may load, by block of 64 output columns, kernel column and vector,
// are the same for every row and channel, so computed once.
#define FORWARD_IMAGE(DEPTH, ...)                                                                                      \
    const long depth = DEPTH, weightStride = depth * c->kernelHeight * c->kernelWidth;                                 \
    const long blocks = (c->outputWidth + 63) / 64;                                                                    \
    uint32_t *loadMasks = mask_table(blocks * c->kernelWidth * 4);                                                     \
    for (long block = 0; block < blocks; block++)                                                                      \
        for (long kx = 0; kx < c->kernelWidth; kx++)                                                                   \
            for (int j = 0; j < 4; j++) {                                                                              \
                const long first = block * 64 + 16 * j;                                                                \
                loadMasks[(block * c->kernelWidth + kx) * 4 + j] =                                                     \
                    columns(first + kx - c->padWidth, c->width, first, c->outputWidth, 16);                            \
            }                                                                                                          \
    for (long o0 = 0; o0 < c->outputChannels; o0 += 4) {                                                               \
        const long group = c->outputChannels - o0 < 4 ? c->outputChannels - o0 : 4;                                    \
        for (long yo = 0; yo < c->outputHeight; yo++) {                                                                \
            switch (group) {                                                                                           \
            case 1:                                                                                                    \
                FORWARD_ROW(1, __VA_ARGS__) break;                                                                     \
            case 2:                                                                                                    \
                FORWARD_ROW(2, __VA_ARGS__) break;                                                                     \
            case 3:                                                                                                    \
                FORWARD_ROW(3, __VA_ARGS__) break;                                                                     \
            default:                                                                                                   \
                FORWARD_ROW(4, __VA_ARGS__) break;                                                                     \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    free(loadMasks);

AVX512 static void forward_avx512(const struct sagan_direct_convolution *c, const float *input, const float *weight,
                                  const float *bias, float *output){
    FORWARD_IMAGE(c->inputChannels, __m512, float, _mm512_maskz_loadu_ps, _mm512_set1_ps, fma_step)}

AVX512_BF16 static void forward_bf16_avx512(const struct sagan_direct_convolution *c, const uint32_t *input,
                                            const uint32_t *weight, const float *bias, float *output){
    FORWARD_IMAGE((c->inputChannels + 1) / 2, __m512i, uint32_t, _mm512_maskz_loadu_epi32, broadcast_word, bf16_step)}

AVX512 static float sum16(__m512 v) {
    return _mm512_reduce_add_ps(v);
}

// Weight gradients of output channels o0..o0+GROUP-1 for one input channel and kernel row,
// columns kx0..kx0+TAPS-1 of the kernel: GROUP x TAPS accumulators over the whole image (both
// compile-time constants, so the accumulators stay in registers). A vector holds LANES columns
// (16 Float32, or 32 bf16 whose neighbours pair up).
#define WEIGHT_GRADIENT_TAPS(GROUP, TAPS, LANES, VECTOR, ELEMENT, LOAD, STEP)                                          \
    {                                                                                                                  \
        const int taps = TAPS;                                                                                         \
        __m512 acc[GROUP][TAPS];                                                                                       \
        for (int g = 0; g < GROUP; g++)                                                                                \
            for (int k = 0; k < TAPS; k++) acc[g][k] = _mm512_setzero_ps();                                            \
        for (long yo = 0; yo < c->outputHeight; yo++) {                                                                \
            const long yi = yo + ky - c->padHeight;                                                                    \
            if (yi < 0 || yi >= c->height) continue;                                                                   \
            const ELEMENT *row = input + i * c->inputChannelStride + yi * c->width;                                    \
            for (long x0 = 0; x0 < c->outputWidth; x0 += LANES) {                                                      \
                const uint32_t *masks = loadMasks + x0 / LANES * (c->kernelWidth + 1);                                 \
                const uint32_t inside = masks[c->kernelWidth];                                                         \
                VECTOR dy[GROUP];                                                                                      \
                for (int g = 0; g < GROUP; g++)                                                                        \
                    dy[g] =                                                                                            \
                        LOAD(inside, outputGradient + (o0 + g) * c->outputChannelStride + yo * c->outputWidth + x0);   \
                for (int k = 0; k < taps; k++) {                                                                       \
                    const long start = x0 + kx0 + k - c->padWidth;                                                     \
                    const VECTOR v = LOAD(masks[kx0 + k], row + start);                                                \
                    for (int g = 0; g < GROUP; g++) acc[g][k] = STEP(acc[g][k], dy[g], v);                             \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int g = 0; g < GROUP; g++)                                                                                \
            for (int k = 0; k < taps; k++)                                                                             \
                weightGradient[(((o0 + g) * c->inputChannels + i) * c->kernelHeight + ky) * c->kernelWidth + kx0       \
                               + k] = sum16(acc[g][k]);                                                                \
    }

#define WEIGHT_GRADIENT_CASE(GROUP, TAPS, ...)                                                                         \
    case GROUP * 4 + TAPS:                                                                                             \
        WEIGHT_GRADIENT_TAPS(GROUP, TAPS, __VA_ARGS__) break;

// A whole image. By vector of LANES output columns: the input columns each kernel column loads,
// then the output columns themselves. The bias gradient adds each output gradient times ONE.
#define WEIGHT_GRADIENT_IMAGE(LANES, VECTOR, ELEMENT, LOAD, STEP, ONE)                                                 \
    const long plane = c->outputHeight * c->outputWidth;                                                               \
    const long vectors = (c->outputWidth + LANES - 1) / LANES;                                                         \
    uint32_t *loadMasks = mask_table(vectors * (c->kernelWidth + 1));                                                  \
    for (long vector = 0; vector < vectors; vector++) {                                                                \
        const long first = vector * LANES;                                                                             \
        for (long kx = 0; kx < c->kernelWidth; kx++)                                                                   \
            loadMasks[vector * (c->kernelWidth + 1) + kx] =                                                            \
                columns(first + kx - c->padWidth, c->width, first, c->outputWidth, LANES);                             \
        loadMasks[vector * (c->kernelWidth + 1) + c->kernelWidth] =                                                    \
            columns(first, c->outputWidth, first, c->outputWidth, LANES);                                              \
    }                                                                                                                  \
    if (biasGradient) {                                                                                                \
        for (long o = 0; o < c->outputChannels; o++) {                                                                 \
            __m512 acc = _mm512_setzero_ps();                                                                          \
            for (long p = 0; p < plane; p += LANES)                                                                    \
                acc = STEP(acc,                                                                                        \
                           LOAD(columns(p, plane, p, plane, LANES), outputGradient + o * c->outputChannelStride + p),  \
                           ONE);                                                                                       \
            biasGradient[o] = sum16(acc);                                                                              \
        }                                                                                                              \
    }                                                                                                                  \
    for (long o0 = 0; o0 < c->outputChannels; o0 += 4) {                                                               \
        const long group = c->outputChannels - o0 < 4 ? c->outputChannels - o0 : 4;                                    \
        for (long i = 0; i < c->inputChannels; i++) {                                                                  \
            for (long ky = 0; ky < c->kernelHeight; ky++) {                                                            \
                for (long kx0 = 0; kx0 < c->kernelWidth; kx0 += 4) {                                                   \
                    const long taps = c->kernelWidth - kx0 < 4 ? c->kernelWidth - kx0 : 4;                             \
                    switch (group * 4 + taps) {                                                                        \
                        WEIGHT_GRADIENT_CASE(1, 1, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(1, 2, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(1, 3, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(1, 4, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(2, 1, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(2, 2, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(2, 3, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(2, 4, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(3, 1, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(3, 2, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(3, 3, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(3, 4, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(4, 1, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(4, 2, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(4, 3, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                        WEIGHT_GRADIENT_CASE(4, 4, LANES, VECTOR, ELEMENT, LOAD, STEP)                                 \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    free(loadMasks);

AVX512 static ALWAYS_INLINE __m512 load16(uint32_t mask, const float *from) {
    return _mm512_maskz_loadu_ps((__mmask16)mask, from);
}

AVX512_BF16 static ALWAYS_INLINE __m512i load32_bf16(uint32_t mask, const uint16_t *from) {
    return _mm512_maskz_loadu_epi16((__mmask32)mask, from);
}

AVX512 static void weight_gradient_avx512(const struct sagan_direct_convolution *c, const float *input,
                                          const float *outputGradient, float *weightGradient, float *biasGradient){
    WEIGHT_GRADIENT_IMAGE(16, __m512, float, load16, fma_step, _mm512_set1_ps(1.0f))}

AVX512_BF16 static void weight_gradient_bf16_avx512(const struct sagan_direct_convolution *c, const uint16_t *input,
                                                    const uint16_t *outputGradient, float *weightGradient,
                                                    float *biasGradient) {
    WEIGHT_GRADIENT_IMAGE(32, __m512i, uint16_t, load32_bf16, bf16_step, _mm512_set1_epi16(0x3F80))
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

void sagan_direct_convolution_forward_bf16(const struct sagan_direct_convolution *c, const uint32_t *input,
                                           const uint32_t *weight, const float *bias, float *output) {
    forward_bf16_avx512(c, input, weight, bias, output);
}

void sagan_direct_convolution_weight_gradient_bf16(const struct sagan_direct_convolution *c, const uint16_t *input,
                                                   const uint16_t *outputGradient, float *weightGradient,
                                                   float *biasGradient) {
    weight_gradient_bf16_avx512(c, input, outputGradient, weightGradient, biasGradient);
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

void sagan_interleave_phase(const float *phase, long channels, long rows, long columns, long phaseRowStride,
                            long phaseChannelStride, float *destination, long destinationRowStride,
                            long destinationChannelStride) {
    for (long c = 0; c < channels; c++)
        for (long a = 0; a < rows; a++) {
            const float *from = phase + c * phaseChannelStride + a * phaseRowStride;
            float *to = destination + c * destinationChannelStride + 2 * a * destinationRowStride;
            for (long b = 0; b < columns; b++) to[2 * b] = from[b];
        }
}
