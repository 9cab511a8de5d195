// Column softmax for the attention kernel: an AVX-512 version (chosen at run time) and a plain one.
#include "bf16_rounding.h"
#include "kernels.h"

#include <immintrin.h>
#include <math.h>

// ---- plain C (any CPU) ----

static void softmax_columns_plain(float *tile, int keys, int queries, int stride, const float *maxima,
                                  float *inverseSums) {
    for (int j = 0; j < queries; j++) {
        float maximum = -INFINITY, sum = 0;
        if (maxima)
            maximum = maxima[j];
        else
            for (int i = 0; i < keys; i++) maximum = fmaxf(maximum, tile[i * stride + j]);
        for (int i = 0; i < keys; i++) {
            float e = expf(tile[i * stride + j] - maximum);
            tile[i * stride + j] = e;
            sum += e;
        }
        if (inverseSums)
            inverseSums[j] = 1 / sum;
        else
            for (int i = 0; i < keys; i++) tile[i * stride + j] /= sum;
    }
}

// With `scales`, p holds exp(x − max) and the softmax is p · scales[j] (see the unnormalised forward).
static void softmax_columns_backward_plain(const float *p, float *gradient, int keys, int queries, int stride,
                                           const float *scales) {
    for (int j = 0; j < queries; j++) {
        const float scale = scales ? scales[j] : 1;
        float dot = 0;
        for (int i = 0; i < keys; i++) dot += p[i * stride + j] * gradient[i * stride + j];
        dot *= scale;
        for (int i = 0; i < keys; i++)
            gradient[i * stride + j] = p[i * stride + j] * scale * (gradient[i * stride + j] - dot);
    }
}

// ---- AVX-512 ----

// e^(x − m) as 2^t for t = x·log2(e) − m·log2(e), formed by one FMA (the rounding of m·log2(e)
// scales a whole column alike, which its normalisation cancels); t = n + f with |f| <= 1/2, 2^f by a
// degree-6 polynomial fitted for relative error (2e-9 before float's rounding), 2^n applied with
// scalef, which also takes care of underflow. `scaledMax` is m·log2(e). Seven FMA-unit operations
// where e^r after a two-part ln 2 reduction took ten (a 1024x128 tile: 29.8 → 23.4 us on a Zen 4),
// and as close to the exact softmax as expf(x − m) in float: on scores of ±40, both within 5e-6
// relative, the rounding of t (or of x − m) dominating.
__attribute__((target("avx512f"))) static inline __m512 exp_shifted_avx512(__m512 x, __m512 scaledMax) {
    __m512 t = _mm512_fmsub_ps(x, _mm512_set1_ps(1.44269504088896341f), scaledMax);
    t = _mm512_max_ps(t, _mm512_set1_ps(-200.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.533757683e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339986036e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618519534e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550328998e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264661e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472056e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.000000001f));
    return _mm512_scalef_ps(p, n);
}

// Columns in groups of up to 8 vectors of 16 (128 queries) so that a group's maxima and sums
// stay in registers while the rows stream past.
#define GROUP 8

// The lanes of vector v of a group `width` columns wide.
static inline __mmask16 column_mask(int width, int v) {
    const int left = width - 16 * v;
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

// CALL(VECTORS) for each group of columns j0 .. j0 + width − 1: VECTORS a constant for whole groups,
// so that a group's per-column registers stay registers.
#define EACH_COLUMN_GROUP(QUERIES, CALL)                                                                               \
    for (int j0 = 0; j0 < (QUERIES); j0 += 16 * GROUP) {                                                               \
        const int width = (QUERIES)-j0 < 16 * GROUP ? (QUERIES)-j0 : 16 * GROUP;                                       \
        if (width == 16 * GROUP)                                                                                       \
            CALL(GROUP);                                                                                               \
        else                                                                                                           \
            CALL((width + 15) / 16);                                                                                   \
    }

// The maxima of one group's columns into `maximum` (registers when inlined with a constant `vectors`).
__attribute__((target("avx512f"), always_inline)) static inline void
column_group_maxima(const float *tile, int keys, long stride, int j0, const int vectors, const __mmask16 masks[],
                    __m512 maximum[]) {
    for (int v = 0; v < vectors; v++) maximum[v] = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < keys; i++) {
        const float *row = tile + i * stride + j0;
        for (int v = 0; v < vectors; v++)
            maximum[v] =
                _mm512_mask_max_ps(maximum[v], masks[v], maximum[v], _mm512_maskz_loadu_ps(masks[v], row + 16 * v));
    }
}

// One group of columns; inlined with a constant `vectors` for whole groups, so that the per-column
// maxima and sums live in registers rather than on the stack.
__attribute__((target("avx512f"), always_inline)) static inline void
softmax_column_group(float *tile, int keys, int stride, int j0, int width, const int vectors, const float *maxima,
                     float *inverseSums) {
    {
        __mmask16 masks[GROUP];
        __m512 maximum[GROUP], sum[GROUP];
        for (int v = 0; v < vectors; v++) {
            masks[v] = column_mask(width, v);
            sum[v] = _mm512_setzero_ps();
        }
        if (maxima)
            for (int v = 0; v < vectors; v++) maximum[v] = _mm512_maskz_loadu_ps(masks[v], maxima + j0 + 16 * v);
        else
            column_group_maxima(tile, keys, stride, j0, vectors, masks, maximum);
        // From here on, each maximum times log2(e).
        for (int v = 0; v < vectors; v++) maximum[v] = _mm512_mul_ps(maximum[v], _mm512_set1_ps(1.44269504088896341f));
        for (int i = 0; i < keys; i++) {
            float *row = tile + (long)i * stride + j0;
            for (int v = 0; v < vectors; v++) {
                __m512 e = exp_shifted_avx512(_mm512_maskz_loadu_ps(masks[v], row + 16 * v), maximum[v]);
                _mm512_mask_storeu_ps(row + 16 * v, masks[v], e);
                sum[v] = _mm512_mask_add_ps(sum[v], masks[v], sum[v], e);
            }
        }
        __m512 inverse[GROUP];
        for (int v = 0; v < vectors; v++)
            inverse[v] =
                _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), masks[v], sum[v]));
        if (inverseSums) {
            for (int v = 0; v < vectors; v++) _mm512_mask_storeu_ps(inverseSums + j0 + 16 * v, masks[v], inverse[v]);
            return;
        }
        for (int i = 0; i < keys; i++) {
            float *row = tile + (long)i * stride + j0;
            for (int v = 0; v < vectors; v++)
                _mm512_mask_storeu_ps(row + 16 * v, masks[v],
                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(masks[v], row + 16 * v), inverse[v]));
        }
    }
}

__attribute__((target("avx512f"))) static void softmax_columns_avx512(float *tile, int keys, int queries, int stride,
                                                                      const float *maxima, float *inverseSums) {
#define FORWARD_GROUP(VECTORS) softmax_column_group(tile, keys, stride, j0, width, VECTORS, maxima, inverseSums)
    EACH_COLUMN_GROUP(queries, FORWARD_GROUP)
#undef FORWARD_GROUP
}

// One group's maxima, stored.
__attribute__((target("avx512f"), always_inline)) static inline void
store_column_group_maxima(const float *tile, int keys, long stride, int j0, int width, const int vectors,
                          float *maxima) {
    __mmask16 masks[GROUP];
    __m512 maximum[GROUP];
    for (int v = 0; v < vectors; v++) masks[v] = column_mask(width, v);
    column_group_maxima(tile, keys, stride, j0, vectors, masks, maximum);
    for (int v = 0; v < vectors; v++) _mm512_mask_storeu_ps(maxima + j0 + 16 * v, masks[v], maximum[v]);
}

__attribute__((target("avx512f"))) static void column_maxima_avx512(const float *tile, int keys, int columns,
                                                                    long stride, float *maxima) {
#define MAXIMA_GROUP(VECTORS) store_column_group_maxima(tile, keys, stride, j0, width, VECTORS, maxima)
    EACH_COLUMN_GROUP(columns, MAXIMA_GROUP)
#undef MAXIMA_GROUP
}

__attribute__((target("avx512f"), always_inline)) static inline void
softmax_column_group_backward(const float *p, float *gradient, int keys, int stride, int j0, int width,
                              const int vectors, const float *scales) {
    {
        __mmask16 masks[GROUP];
        __m512 dot[GROUP], scale[GROUP];
        for (int v = 0; v < vectors; v++) {
            masks[v] = column_mask(width, v);
            dot[v] = _mm512_setzero_ps();
            scale[v] = scales ? _mm512_maskz_loadu_ps(masks[v], scales + j0 + 16 * v) : _mm512_set1_ps(1.0f);
        }
        for (int i = 0; i < keys; i++) {
            const float *prow = p + (long)i * stride + j0, *grow = gradient + (long)i * stride + j0;
            for (int v = 0; v < vectors; v++)
                dot[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[v], prow + 16 * v),
                                         _mm512_maskz_loadu_ps(masks[v], grow + 16 * v), dot[v]);
        }
        for (int v = 0; v < vectors; v++) dot[v] = _mm512_mul_ps(dot[v], scale[v]);
        for (int i = 0; i < keys; i++) {
            const float *prow = p + (long)i * stride + j0;
            float *grow = gradient + (long)i * stride + j0;
            for (int v = 0; v < vectors; v++) {
                __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(masks[v], grow + 16 * v), dot[v]);
                __m512 probability = _mm512_mul_ps(_mm512_maskz_loadu_ps(masks[v], prow + 16 * v), scale[v]);
                _mm512_mask_storeu_ps(grow + 16 * v, masks[v], _mm512_mul_ps(probability, g));
            }
        }
    }
}

__attribute__((target("avx512f"))) static void softmax_columns_backward_avx512(const float *p, float *gradient,
                                                                               int keys, int queries, int stride,
                                                                               const float *scales) {
#define BACKWARD_GROUP(VECTORS) softmax_column_group_backward(p, gradient, keys, stride, j0, width, VECTORS, scales)
    EACH_COLUMN_GROUP(queries, BACKWARD_GROUP)
#undef BACKWARD_GROUP
}

void sagan_scale_row(float *restrict row, const float *restrict scales, int count) {
    for (int j = 0; j < count; j++) row[j] *= scales[j];
}

// ---- dispatch ----

int sagan_kernels_use_avx512(void) {
    return __builtin_cpu_supports("avx512f");
}

void sagan_column_maxima_portable(const float *tile, int rows, int columns, long stride, float *maxima) {
    for (int j = 0; j < columns; j++) maxima[j] = -INFINITY;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < columns; j++) maxima[j] = fmaxf(maxima[j], tile[i * stride + j]);
}

void sagan_column_maxima(const float *tile, int rows, int columns, long stride, float *maxima) {
    if (sagan_kernels_use_avx512())
        column_maxima_avx512(tile, rows, columns, stride, maxima);
    else
        sagan_column_maxima_portable(tile, rows, columns, stride, maxima);
}

void sagan_softmax_columns(float *tile, int keys, int queries, int stride) {
    if (sagan_kernels_use_avx512())
        softmax_columns_avx512(tile, keys, queries, stride, 0, 0);
    else
        softmax_columns_plain(tile, keys, queries, stride, 0, 0);
}

void sagan_softmax_columns_unnormalized(float *tile, int keys, int queries, int stride, float *inverseSums) {
    if (sagan_kernels_use_avx512())
        softmax_columns_avx512(tile, keys, queries, stride, 0, inverseSums);
    else
        softmax_columns_plain(tile, keys, queries, stride, 0, inverseSums);
}

void sagan_softmax_columns_exponentials(float *tile, int keys, int queries, int stride, const float *maxima,
                                        float *inverseSums) {
    if (sagan_kernels_use_avx512())
        softmax_columns_avx512(tile, keys, queries, stride, maxima, inverseSums);
    else
        softmax_columns_plain(tile, keys, queries, stride, maxima, inverseSums);
}

void sagan_softmax_columns_backward(const float *p, float *gradient, int keys, int queries, int stride) {
    if (sagan_kernels_use_avx512())
        softmax_columns_backward_avx512(p, gradient, keys, queries, stride, 0);
    else
        softmax_columns_backward_plain(p, gradient, keys, queries, stride, 0);
}

void sagan_softmax_columns_backward_unnormalized(const float *e, float *gradient, int keys, int queries, int stride,
                                                 const float *inverseSums) {
    if (sagan_kernels_use_avx512())
        softmax_columns_backward_avx512(e, gradient, keys, queries, stride, inverseSums);
    else
        softmax_columns_backward_plain(e, gradient, keys, queries, stride, inverseSums);
}

void sagan_softmax_columns_portable(float *tile, int keys, int queries, int stride) {
    softmax_columns_plain(tile, keys, queries, stride, 0, 0);
}

void sagan_softmax_columns_unnormalized_portable(float *tile, int keys, int queries, int stride, float *inverseSums) {
    softmax_columns_plain(tile, keys, queries, stride, 0, inverseSums);
}

void sagan_softmax_columns_backward_portable(const float *p, float *gradient, int keys, int queries, int stride) {
    softmax_columns_backward_plain(p, gradient, keys, queries, stride, 0);
}

void sagan_softmax_columns_backward_unnormalized_portable(const float *e, float *gradient, int keys, int queries,
                                                          int stride, const float *inverseSums) {
    softmax_columns_backward_plain(e, gradient, keys, queries, stride, inverseSums);
}

// ---- the bf16 attention's softmax backward, fused with the rounding of its results ----

/* One group of columns, as softmax_column_group_backward, writing bf16 instead of Float32: P's rows
   in the first pass (which reads E anyway), dS's rows and key pairs in the second, two rows at a time. */
AVX512_BF16 __attribute__((always_inline)) static inline void
column_group_backward_bf16(const float *e, const float *dP, int keys, int stride, int j0, int width, const int vectors,
                           const float *scales, uint16_t *pRows, long pRowStride, uint32_t *dsPairs, long pairStride,
                           uint16_t *dsRows, long dsRowStride) {
    __mmask16 masks[GROUP];
    __m512 dot[GROUP], scale[GROUP];
    for (int v = 0; v < vectors; v++) {
        masks[v] = column_mask(width, v);
        dot[v] = _mm512_setzero_ps();
        scale[v] = _mm512_maskz_loadu_ps(masks[v], scales + j0 + 16 * v);
    }
    for (int i = 0; i < keys; i++) {
        const float *erow = e + (long)i * stride + j0, *grow = dP + (long)i * stride + j0;
        for (int v = 0; v < vectors; v++) {
            const __m512 exponential = _mm512_maskz_loadu_ps(masks[v], erow + 16 * v);
            dot[v] = _mm512_fmadd_ps(exponential, _mm512_maskz_loadu_ps(masks[v], grow + 16 * v), dot[v]);
            const __m256bh p = _mm512_cvtneps_pbh(_mm512_mul_ps(exponential, scale[v]));
            _mm512_mask_storeu_epi16(pRows + i * pRowStride + j0 + 16 * v, masks[v],
                                     _mm512_castsi256_si512((__m256i)p));
        }
    }
    for (int v = 0; v < vectors; v++) dot[v] = _mm512_mul_ps(dot[v], scale[v]);
    for (int i = 0; i < keys; i += 2) {
        const int second = i + 1 < keys;
        const float *erow = e + (long)i * stride + j0, *grow = dP + (long)i * stride + j0;
        for (int v = 0; v < vectors; v++) {
            __m512 ds[2];
            for (int k = 0; k < 2; k++) {
                if (k == 1 && !second) {
                    ds[1] = _mm512_setzero_ps();
                    break;
                }
                const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(masks[v], grow + k * stride + 16 * v), dot[v]);
                const __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(masks[v], erow + k * stride + 16 * v), scale[v]);
                ds[k] = _mm512_mul_ps(p, g);
            }
            const __m512i halves = (__m512i)_mm512_cvtne2ps_pbh(ds[1], ds[0]);
            _mm512_mask_storeu_epi32(dsPairs + (i / 2) * pairStride + j0 + 16 * v, masks[v],
                                     sagan_bf16_interleave_pairs(halves));
            _mm512_mask_storeu_epi16(dsRows + i * dsRowStride + j0 + 16 * v, masks[v], halves);
            if (second)
                _mm512_mask_storeu_epi16(dsRows + (i + 1) * dsRowStride + j0 + 16 * v, masks[v],
                                         _mm512_shuffle_i64x2(halves, halves, 0xEE));
        }
    }
}

AVX512_BF16 static void softmax_columns_backward_bf16_avx512(const float *e, const float *dP, int keys, int queries,
                                                             int stride, const float *scales, uint16_t *pRows,
                                                             long pRowStride, uint32_t *dsPairs, uint16_t *dsRows,
                                                             long dsRowStride) {
#define BF16_GROUP(VECTORS)                                                                                            \
    column_group_backward_bf16(e, dP, keys, stride, j0, width, VECTORS, scales, pRows, pRowStride, dsPairs, queries,   \
                               dsRows, dsRowStride)
    EACH_COLUMN_GROUP(queries, BF16_GROUP)
#undef BF16_GROUP
    for (int i = 0; i < keys; i++) {
        for (long j = queries; j < pRowStride; j++) pRows[i * pRowStride + j] = 0;
        for (long j = queries; j < dsRowStride; j++) dsRows[i * dsRowStride + j] = 0;
    }
}

void sagan_softmax_columns_backward_bf16(const float *e, float *dP, int keys, int queries, int stride,
                                         const float *inverseSums, uint16_t *pRows, long pRowStride, uint32_t *dsPairs,
                                         uint16_t *dsRows, long dsRowStride) {
    if (sagan_kernels_use_avx512_bf16()) {
        softmax_columns_backward_bf16_avx512(e, dP, keys, queries, stride, inverseSums, pRows, pRowStride, dsPairs,
                                             dsRows, dsRowStride);
        return;
    }
    sagan_convert_bf16(e, keys, queries, stride, inverseSums, pRows, pRowStride);
    sagan_softmax_columns_backward_unnormalized(e, dP, keys, queries, stride, inverseSums);
    sagan_pack_bf16_rows(dP, keys, queries, stride, 0, dsPairs);
    sagan_convert_bf16(dP, keys, queries, stride, 0, dsRows, dsRowStride);
}
