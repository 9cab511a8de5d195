// The bf16 attention's scores tile with its column maxima: a thin-depth matrix product whose B
// operand fits in registers.
#include "bf16_rounding.h"
#include "kernels.h"

#include <math.h>

void sagan_scores_bf16_portable(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                                const uint32_t *packedB, float *c, long ldc, float *maxima) {
    sagan_gemm_bf16_portable(m, n, pairs, a, rowStride, pairStride, packedB, c, ldc, 0);
    sagan_column_maxima_portable(c, (int)m, (int)n, ldc, maxima);
}

/* Columns j0 .. j0 + 63 (masked past n) of C for all m rows, for a depth of PAIRS ≤ 4: B's PAIRS × 4
   vectors loaded once, two rows per step (8 accumulators) and the 4 running maxima, all in registers.
   Each element is the sum over pairs in order from zero, as sagan_gemm_bf16's register blocks form it.
   (Deeper B blocks, 32 or 16 columns wide, ran no faster than sagan_gemm_bf16 on a Zen 4.) */
AVX512_BF16 __attribute__((always_inline)) static inline void scores_columns(const int PAIRS, long m, long n, long j0,
                                                                             const uint32_t *a, long rowStride,
                                                                             long pairStride, const uint32_t *packedB,
                                                                             float *c, long ldc, float *maxima) {
    __mmask16 masks[4];
    __m512i b[4][4];
    __m512 maximum[4];
    for (int v = 0; v < 4; v++) {
        const long left = n - j0 - 16 * v;
        masks[v] = left >= 16 ? (__mmask16)0xFFFF : (left > 0 ? (__mmask16)((1u << left) - 1) : 0);
        maximum[v] = _mm512_set1_ps(-INFINITY);
        for (int p = 0; p < PAIRS; p++) b[p][v] = _mm512_maskz_loadu_epi32(masks[v], packedB + p * n + j0 + 16 * v);
    }
    long i = 0;
#define SCORE_ROWS(ROWS)                                                                                               \
    do {                                                                                                               \
        __m512 acc[2][4];                                                                                              \
        for (int r = 0; r < (ROWS); r++)                                                                               \
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();                                               \
        for (int p = 0; p < PAIRS; p++)                                                                                \
            for (int r = 0; r < (ROWS); r++) {                                                                         \
                const __m512bh left = (__m512bh)_mm512_set1_epi32((int)a[(i + r) * rowStride + p * pairStride]);       \
                for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], left, (__m512bh)b[p][v]);          \
            }                                                                                                          \
        for (int r = 0; r < (ROWS); r++)                                                                               \
            for (int v = 0; v < 4; v++) {                                                                              \
                _mm512_mask_storeu_ps(c + (i + r) * ldc + j0 + 16 * v, masks[v], acc[r][v]);                           \
                maximum[v] = _mm512_max_ps(maximum[v], acc[r][v]);                                                     \
            }                                                                                                          \
    } while (0)
    for (; i + 2 <= m; i += 2) SCORE_ROWS(2);
    for (; i < m; i++) SCORE_ROWS(1);
#undef SCORE_ROWS
    for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(maxima + j0 + 16 * v, masks[v], maximum[v]);
}

AVX512_BF16 static void scores_bf16_avx512(long m, long n, long pairs, const uint32_t *a, long rowStride,
                                           long pairStride, const uint32_t *packedB, float *c, long ldc,
                                           float *maxima) {
    for (long j0 = 0; j0 < n; j0 += 64) {
        switch (pairs) {
#define DEPTH(P)                                                                                                       \
    case P:                                                                                                            \
        scores_columns(P, m, n, j0, a, rowStride, pairStride, packedB, c, ldc, maxima);                                \
        break;
            DEPTH(1)
            DEPTH(2)
            DEPTH(3)
            DEPTH(4)
#undef DEPTH
        }
    }
}

void sagan_scores_bf16(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                       const uint32_t *packedB, float *c, long ldc, float *maxima) {
    if (sagan_kernels_use_avx512_bf16() && pairs >= 1 && pairs <= 4) {
        scores_bf16_avx512(m, n, pairs, a, rowStride, pairStride, packedB, c, ldc, maxima);
        return;
    }
    sagan_gemm_bf16(m, n, pairs, a, rowStride, pairStride, packedB, c, ldc, 0);
    sagan_column_maxima(c, (int)m, (int)n, ldc, maxima);
}
