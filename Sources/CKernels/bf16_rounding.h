// Rounding Float32 to bf16 the way the reference backend defines it (to nearest, ties to even;
// subnormals rounded like any value, where vcvtne2ps2bf16 would flush them; a NaN stays a quiet
// NaN), the interleaving of two rows' bf16 into pairs and the AVX512_BF16 target, for the C files
// that write bf16. Private to CKernels.
#ifndef SAGAN_BF16_ROUNDING_H
#define SAGAN_BF16_ROUNDING_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The bits of x rounded to bf16, in the upper half of a Float32. Plain integer arithmetic, which
   the compiler vectorises. */
static inline uint32_t sagan_bf16_rounded_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t isNaN = (bits & 0x7FFFFFFFu) > 0x7F800000u;
    uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
    return isNaN ? (bits | 0x00400000u) & 0xFFFF0000u : rounded;
}

/* sagan_bf16_rounded_bits on 16 lanes. */
__attribute__((target("avx512f"))) static inline __m512i sagan_bf16_rounded_bits16(__m512i bits) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
    const __m512i upper = _mm512_set1_epi32((int)0xFFFF0000u), quiet = _mm512_set1_epi32(0x00400000);
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), infinity = _mm512_set1_epi32(0x7F800000);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
    __m512i rounded = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(bits, bias), lsb), upper);
    __mmask16 isNaN = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, magnitude), infinity);
    return _mm512_mask_mov_epi32(rounded, isNaN, _mm512_and_si512(_mm512_or_si512(bits, quiet), upper));
}

/* Functions that use AVX512_BF16 (vcvtne2ps2bf16, vdpbf16ps); call them where
   sagan_kernels_use_avx512_bf16() says so. */
#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* 32 bf16 halves, row a's 16 then row b's 16 (as vcvtne2ps2bf16(b, a) leaves them), as 16 pairs:
   word j holds a[j] in its low half and b[j] in its high half (vpermw). */
__attribute__((target("avx512f,avx512bw"))) static inline __m512i sagan_bf16_interleave_pairs(__m512i halves) {
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                           21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, halves);
}

#endif
