// bf16 helpers: rounding Float32 values to bf16, packing operands, and a matrix product on
// AVX512_BF16's dot products (vdpbf16ps) with a plain C fallback.
#include "bf16_rounding.h"
#include "kernels.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

void sagan_round_bf16_portable(float *data, long count) {
    for (long i = 0; i < count; i++) {
        uint32_t result = sagan_bf16_rounded_bits(data[i]);
        memcpy(&data[i], &result, sizeof result);
    }
}

/* The rounding on 16 lanes: the same integer arithmetic, so subnormals round as they do there
   (vcvtne2ps2bf16 would flush them). */
__attribute__((target("avx512f"))) static void round_bf16_avx512(float *data, long count) {
    for (long i = 0; i < count; i += 16) {
        __mmask16 mask = count - i >= 16 ? 0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        __m512i bits = _mm512_maskz_loadu_epi32(mask, data + i);
        _mm512_mask_storeu_epi32(data + i, mask, sagan_bf16_rounded_bits16(bits));
    }
}

void sagan_round_bf16(float *data, long count) {
    if (sagan_kernels_use_avx512())
        round_bf16_avx512(data, count);
    else
        sagan_round_bf16_portable(data, count);
}

static void convert_bf16_portable(const float *source, long rows, long columns, long sourceStride, const float *scales,
                                  uint16_t *destination, long destinationStride) {
    for (long i = 0; i < rows; i++) {
        const float *from = source + i * sourceStride;
        uint16_t *to = destination + i * destinationStride;
        for (long j = 0; j < columns; j++)
            to[j] = (uint16_t)(sagan_bf16_rounded_bits(from[j] * (scales ? scales[j] : 1)) >> 16);
        for (long j = columns; j < destinationStride; j++) to[j] = 0;
    }
}

/* vcvtne2ps2bf16 rounds to nearest even, as rounded_bits does (it also flushes subnormals to zero). */
AVX512_BF16 static void convert_bf16_avx512(const float *source, long rows, long columns, long sourceStride,
                                            const float *scales, uint16_t *destination, long destinationStride) {
    for (long i = 0; i < rows; i++) {
        const float *from = source + i * sourceStride;
        uint16_t *to = destination + i * destinationStride;
        for (long j = 0; j < destinationStride; j += 32) {
            long left = columns - j;
            __mmask16 lowMask = left >= 16 ? 0xFFFF : (left > 0 ? (__mmask16)((1u << left) - 1) : 0);
            __mmask16 highMask = left >= 32 ? 0xFFFF : (left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0);
            __m512 low = _mm512_maskz_loadu_ps(lowMask, from + j);
            __m512 high = _mm512_maskz_loadu_ps(highMask, from + j + 16);
            if (scales) {
                low = _mm512_mul_ps(low, _mm512_maskz_loadu_ps(lowMask, scales + j));
                high = _mm512_mul_ps(high, _mm512_maskz_loadu_ps(highMask, scales + j + 16));
            }
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(high, low);
            long count = destinationStride - j < 32 ? destinationStride - j : 32;
            _mm512_mask_storeu_epi16(to + j, (__mmask32)(count == 32 ? 0xFFFFFFFFu : (1u << count) - 1), both);
        }
    }
}

void sagan_convert_bf16(const float *source, long rows, long columns, long sourceStride, const float *scales,
                        uint16_t *destination, long destinationStride) {
    if (sagan_kernels_use_avx512_bf16())
        convert_bf16_avx512(source, rows, columns, sourceStride, scales, destination, destinationStride);
    else
        convert_bf16_portable(source, rows, columns, sourceStride, scales, destination, destinationStride);
}

void sagan_pack_bf16_rows_portable(const float *source, long depth, long columns, long sourceStride,
                                   const float *scales, uint32_t *packed) {
    for (long p = 0; p < (depth + 1) / 2; p++) {
        const float *low = source + 2 * p * sourceStride;
        const float *high = 2 * p + 1 < depth ? low + sourceStride : 0;
        uint32_t *to = packed + p * columns;
        for (long j = 0; j < columns; j++) {
            float scale = scales ? scales[j] : 1.0f;
            uint32_t first = sagan_bf16_rounded_bits(low[j] * scale) >> 16;
            uint32_t second = high ? sagan_bf16_rounded_bits(high[j] * scale) : 0;
            to[j] = first | second;
        }
    }
}

/* Two rows rounded together (vcvtne2ps2bf16), then their bf16 halves interleaved into pairs (vpermw). */
AVX512_BF16 static void pack_bf16_rows_avx512(const float *source, long depth, long columns, long sourceStride,
                                              const float *scales, uint32_t *packed) {
    for (long p = 0; p < (depth + 1) / 2; p++) {
        const float *low = source + 2 * p * sourceStride;
        const float *high = low + sourceStride;
        int hasHigh = 2 * p + 1 < depth;
        uint32_t *to = packed + p * columns;
        for (long j = 0; j < columns; j += 16) {
            __mmask16 mask = columns - j >= 16 ? 0xFFFF : (__mmask16)((1u << (columns - j)) - 1);
            __m512 first = _mm512_maskz_loadu_ps(mask, low + j);
            __m512 second = hasHigh ? _mm512_maskz_loadu_ps(mask, high + j) : _mm512_setzero_ps();
            if (scales) {
                __m512 scale = _mm512_maskz_loadu_ps(mask, scales + j);
                first = _mm512_mul_ps(first, scale);
                if (hasHigh) second = _mm512_mul_ps(second, scale); /* past the depth: +0, not 0·(−s) */
            }
            __m512i halves = (__m512i)_mm512_cvtne2ps_pbh(second, first);
            _mm512_mask_storeu_epi32(to + j, mask, sagan_bf16_interleave_pairs(halves));
        }
    }
}

void sagan_pack_bf16_rows(const float *source, long depth, long columns, long sourceStride, const float *scales,
                          uint32_t *packed) {
    if (sagan_kernels_use_avx512_bf16())
        pack_bf16_rows_avx512(source, depth, columns, sourceStride, scales, packed);
    else
        sagan_pack_bf16_rows_portable(source, depth, columns, sourceStride, scales, packed);
}

/* The bf16 value in the low (which = 0) or high half of a pair, as a Float32. */
static inline float half_of(uint32_t pair, int which) {
    uint32_t bits = which ? pair & 0xFFFF0000u : pair << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void sagan_gemm_bf16_portable(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                              const uint32_t *packedB, float *c, long ldc, int accumulate) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            float sum = accumulate ? c[i * ldc + j] : 0.0f;
            for (long p = 0; p < pairs; p++) {
                uint32_t left = a[i * rowStride + p * pairStride];
                uint32_t right = packedB[p * n + j];
                sum += half_of(left, 1) * half_of(right, 1); /* vdpbf16ps's order: high half first */
                sum += half_of(left, 0) * half_of(right, 0);
            }
            c[i * ldc + j] = sum;
        }
    }
}

/* A block of R rows (R ≤ 6) and up to 64 columns of C: 4R accumulators kept in registers over the
   whole depth, one broadcast of A's pair per row and four loads of B's pairs per step. */
AVX512_BF16 __attribute__((always_inline)) static inline void
block_bf16(int rows, long n, long pairs, const uint32_t *a, long rowStride, long pairStride, const uint32_t *b,
           float *c, long ldc, int accumulate, const __mmask16 masks[4]) {
    __m512 acc[6][4];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 4; v++)
            acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(masks[v], c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (long p = 0; p < pairs; p++) {
        const uint32_t *row = b + p * n;
        __m512i right[4];
        for (int v = 0; v < 4; v++) right[v] = _mm512_maskz_loadu_epi32(masks[v], row + 16 * v);
        for (int r = 0; r < rows; r++) {
            __m512bh left = (__m512bh)_mm512_set1_epi32((int)a[r * rowStride + p * pairStride]);
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], left, (__m512bh)right[v]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, masks[v], acc[r][v]);
}

/* CALL(R) over rows i0 of A in blocks of R = 6, then once for the rest, R a constant each time so
   that a block's accumulators stay in registers. */
#define EACH_ROW_BLOCK(CALL)                                                                                           \
    do {                                                                                                               \
        long i0 = 0;                                                                                                   \
        for (; i0 + 6 <= m; i0 += 6) CALL(6);                                                                          \
        switch (m - i0) {                                                                                              \
        case 5:                                                                                                        \
            CALL(5);                                                                                                   \
            break;                                                                                                     \
        case 4:                                                                                                        \
            CALL(4);                                                                                                   \
            break;                                                                                                     \
        case 3:                                                                                                        \
            CALL(3);                                                                                                   \
            break;                                                                                                     \
        case 2:                                                                                                        \
            CALL(2);                                                                                                   \
            break;                                                                                                     \
        case 1:                                                                                                        \
            CALL(1);                                                                                                   \
            break;                                                                                                     \
        default:                                                                                                       \
            break;                                                                                                     \
        }                                                                                                              \
    } while (0)

#define BLOCK(R)                                                                                                       \
    block_bf16(R, n, pairs, a + i0 * rowStride, rowStride, pairStride, b, c + i0 * ldc + j0, ldc, accumulate, masks)

/* C of at most 8 columns from rows of A whose pairs are contiguous (pairStride 1): a 16-lane
   accumulator holds column j's sums of even pairs in lane 2j and of odd pairs in lane 2j + 1, so one
   vdpbf16ps takes two pairs of a row (a 64-bit broadcast) against `b`, B's pairs interleaved to
   match; the lanes are added at the end. The 64-column block below would leave 15/16 of every
   product unused on such a C (the attention's dk, C/8 = 8 columns). */
AVX512_BF16 __attribute__((always_inline)) static inline void narrow_block_bf16(int rows, long quads, long pairs,
                                                                                const uint32_t *a, long rowStride,
                                                                                const __m512i *b, float *c, long ldc,
                                                                                int accumulate, __mmask16 columns) {
    __m512 acc[6];
    for (int r = 0; r < rows; r++) acc[r] = _mm512_setzero_ps();
    for (long u = 0; u < quads; u++) {
        for (int r = 0; r < rows; r++) {
            const uint32_t *row = a + r * rowStride + 2 * u;
            uint64_t two = row[0];
            if (2 * u + 1 < pairs) memcpy(&two, row, sizeof two);
            acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi64((long long)two), (__m512bh)b[u]);
        }
    }
    for (int r = 0; r < rows; r++) {
        __m512 sums = _mm512_add_ps(acc[r], _mm512_permute_ps(acc[r], 0xB1));
        __m512 result = _mm512_maskz_compress_ps(0x5555, sums);
        if (accumulate) result = _mm512_add_ps(result, _mm512_maskz_loadu_ps(columns, c + r * ldc));
        _mm512_mask_storeu_ps(c + r * ldc, columns, result);
    }
}

#define NARROW(R)                                                                                                      \
    narrow_block_bf16(R, quads, chunk, a + i0 * rowStride + p0, rowStride, b, c + i0 * ldc, ldc, accumulate || p0 > 0, \
                      columns)

AVX512_BF16 static void gemm_bf16_narrow(long m, long n, long pairs, const uint32_t *a, long rowStride,
                                         const uint32_t *packedB, float *c, long ldc, int accumulate) {
    enum { CHUNK = 64 }; /* interleaved B vectors per pass over A's rows: 128 pairs */
    __m512i b[CHUNK];
    const __mmask16 columns = (__mmask16)((1u << n) - 1);
    for (long p0 = 0; p0 < pairs; p0 += 2 * CHUNK) {
        long chunk = pairs - p0 < 2 * CHUNK ? pairs - p0 : 2 * CHUNK, quads = (chunk + 1) / 2;
        for (long u = 0; u < quads; u++) {
            uint32_t lanes[16] = {0};
            for (long parity = 0; parity < 2 && 2 * u + parity < chunk; parity++)
                for (long j = 0; j < n; j++) lanes[2 * j + parity] = packedB[(p0 + 2 * u + parity) * n + j];
            b[u] = _mm512_loadu_si512(lanes);
        }
        EACH_ROW_BLOCK(NARROW);
    }
}

AVX512_BF16 static void gemm_bf16_avx512(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                                         const uint32_t *packedB, float *c, long ldc, int accumulate) {
    if (n <= 8 && pairStride == 1 && pairs > 0) {
        gemm_bf16_narrow(m, n, pairs, a, rowStride, packedB, c, ldc, accumulate);
        return;
    }
    for (long j0 = 0; j0 < n; j0 += 64) {
        __mmask16 masks[4];
        for (int v = 0; v < 4; v++) {
            long left = n - j0 - 16 * v;
            masks[v] = left >= 16 ? (__mmask16)0xFFFF : (left > 0 ? (__mmask16)((1u << left) - 1) : 0);
        }
        const uint32_t *b = packedB + j0;
        EACH_ROW_BLOCK(BLOCK);
    }
}

int sagan_kernels_use_avx512_bf16(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512bf16");
}

void sagan_gemm_bf16(long m, long n, long pairs, const uint32_t *a, long rowStride, long pairStride,
                     const uint32_t *packedB, float *c, long ldc, int accumulate) {
    if (sagan_kernels_use_avx512_bf16())
        gemm_bf16_avx512(m, n, pairs, a, rowStride, pairStride, packedB, c, ldc, accumulate);
    else
        sagan_gemm_bf16_portable(m, n, pairs, a, rowStride, pairStride, packedB, c, ldc, accumulate);
}

void sagan_transpose_pairs(const uint32_t *source, long rows, long columns, long sourceStride, uint32_t *destination,
                           long destinationStride) {
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < columns; j++) destination[j * destinationStride + i] = source[i * sourceStride + j];
}

void sagan_transpose(const float *source, long rows, long columns, long sourceStride, float *destination,
                     long destinationStride) {
    for (long i0 = 0; i0 < rows; i0 += 16)
        for (long j = 0; j < columns; j++)
            for (long i = i0; i < rows && i < i0 + 16; i++)
                destination[j * destinationStride + i] = source[i * sourceStride + j];
}

void sagan_bf16_halves(const float *values, long count, uint16_t *halves) {
    for (long i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        halves[i] = (uint16_t)(bits >> 16);
    }
}

static void pair_channels_plain(const float *low, const float *high, long positions, uint32_t *to) {
    for (long j = 0; j < positions; j++) {
        uint32_t lowBits, highBits = 0;
        memcpy(&lowBits, &low[j], sizeof lowBits);
        if (high) memcpy(&highBits, &high[j], sizeof highBits);
        to[j] = lowBits >> 16 | (highBits & 0xFFFF0000u);
    }
}

__attribute__((target("avx512f"))) static void pair_channels_avx512(const float *low, const float *high, long positions,
                                                                    uint32_t *to) {
    const __m512i upper = _mm512_set1_epi32((int)0xFFFF0000u);
    for (long j = 0; j < positions; j += 16) {
        const __mmask16 mask = positions - j >= 16 ? 0xFFFF : (__mmask16)((1u << (positions - j)) - 1);
        const __m512i lowHalves = _mm512_srli_epi32(_mm512_maskz_loadu_epi32(mask, low + j), 16);
        const __m512i highHalves =
            high ? _mm512_and_si512(_mm512_maskz_loadu_epi32(mask, high + j), upper) : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(to + j, mask, _mm512_or_si512(lowHalves, highHalves));
    }
}

void sagan_pair_bf16_channels(const float *planar, long channels, long positions, long planarStride, uint32_t *pairs,
                              long pairStride) {
    for (long p = 0; p < (channels + 1) / 2; p++) {
        const float *low = planar + 2 * p * planarStride, *high = 2 * p + 1 < channels ? low + planarStride : 0;
        if (sagan_kernels_use_avx512())
            pair_channels_avx512(low, high, positions, pairs + p * pairStride);
        else
            pair_channels_plain(low, high, positions, pairs + p * pairStride);
    }
}
