// One image between oneDNN's 16-channel-blocked layout (blocks, positions, 16) and planar
// (channels, positions) with a chosen distance between channels: 16x16 squares transposed in
// registers with AVX-512 (64 shuffles per square), plain loops otherwise. Planar channels a multiple
// of 4 KiB apart would share cache sets (16 rows of one square in one set), so callers pad them.
#include "bf16_rounding.h"
#include "kernels.h"

#include <immintrin.h>

// The blocked image's elements are Float32 or bf16 (`bf16`, a constant in each caller, so each
// element type gets its own loops). A bf16 value is the upper half of a Float32: unblocking widens
// it, blocking rounds the Float32 as the reference backend does (sagan_bf16_rounded_bits).

static inline float blocked_element(const void *blocked, long index, int bf16) {
    if (!bf16) return ((const float *)blocked)[index];
    uint32_t bits = (uint32_t)((const uint16_t *)blocked)[index] << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline void set_blocked_element(void *blocked, long index, float value, int bf16) {
    if (bf16)
        ((uint16_t *)blocked)[index] = (uint16_t)(sagan_bf16_rounded_bits(value) >> 16);
    else
        ((float *)blocked)[index] = value;
}

static inline void unblock_plain(const void *blocked, int bf16, long channels, long positions, float *planar,
                                 long planarStride) {
    for (long c = 0; c < channels; c++) {
        const long source = c / 16 * positions * 16 + c % 16;
        for (long p = 0; p < positions; p++)
            planar[c * planarStride + p] = blocked_element(blocked, source + p * 16, bf16);
    }
}

static inline void block_plain(const float *planar, long planarStride, long channels, long positions, void *blocked,
                               int bf16) {
    const long padded = (channels + 15) / 16 * 16;
    for (long c = 0; c < padded; c++) {
        const long destination = c / 16 * positions * 16 + c % 16;
        for (long p = 0; p < positions; p++)
            set_blocked_element(blocked, destination + p * 16, c < channels ? planar[c * planarStride + p] : 0, bf16);
    }
}

#define AVX512 __attribute__((target("avx512f")))

// r[i][j] → r[j][i] for a 16x16 square held in 16 registers.
AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + k], 128-bit lane L: rows 4g..4g+3 of column 4L + k.
    for (int g = 0; g < 4; g++) {
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int k = 0; k < 4; k++) {
        const __m512 v = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44), w = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE);
        const __m512 x = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44),
                     y = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
        r[k] = _mm512_shuffle_f32x4(v, x, 0x88);
        r[4 + k] = _mm512_shuffle_f32x4(v, x, 0xDD);
        r[8 + k] = _mm512_shuffle_f32x4(w, y, 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(w, y, 0xDD);
    }
}

/* The 16 channels of blocked position `index` as Float32. */
AVX512 static inline __m512 load_position(const void *blocked, long index, int bf16) {
    if (!bf16) return _mm512_loadu_ps((const float *)blocked + index * 16);
    __m256i halves = _mm256_loadu_si256((const __m256i *)((const uint16_t *)blocked + index * 16));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

/* Position `index` of the blocked image from 16 channels; a Float32 image in 64-byte-aligned memory
   takes streaming stores (it is a fresh output: they do not read its lines first). */
AVX512 static inline void store_position(void *blocked, long index, __m512 value, int bf16, int aligned) {
    if (bf16) {
        __m512i bits = _mm512_srli_epi32(sagan_bf16_rounded_bits16(_mm512_castps_si512(value)), 16);
        _mm256_storeu_si256((__m256i *)((uint16_t *)blocked + index * 16), _mm512_cvtepi32_epi16(bits));
    } else if (aligned) {
        _mm512_stream_ps((float *)blocked + index * 16, value);
    } else {
        _mm512_storeu_ps((float *)blocked + index * 16, value);
    }
}

AVX512 static inline void unblock_avx512(const void *blocked, int bf16, long channels, long positions, float *planar,
                                         long planarStride) {
    const long whole = positions / 16 * 16;
    for (long c0 = 0; c0 < channels; c0 += 16) {
        const long width = channels - c0 < 16 ? channels - c0 : 16;
        const long block = c0 * positions;
        for (long p0 = 0; p0 < whole; p0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = load_position(blocked, block / 16 + p0 + i, bf16);
            transpose16(r);
            for (long c = 0; c < width; c++) _mm512_storeu_ps(planar + (c0 + c) * planarStride + p0, r[c]);
        }
        for (long c = 0; c < width; c++)
            for (long p = whole; p < positions; p++)
                planar[(c0 + c) * planarStride + p] = blocked_element(blocked, block + p * 16 + c, bf16);
    }
}

AVX512 static inline void block_avx512(const float *planar, long planarStride, long channels, long positions,
                                       void *blocked, int bf16) {
    const long whole = positions / 16 * 16;
    const int aligned = (unsigned long)blocked % 64 == 0;
    for (long c0 = 0; c0 < channels; c0 += 16) {
        const long width = channels - c0 < 16 ? channels - c0 : 16;
        const long block = c0 * positions;
        for (long p0 = 0; p0 < whole; p0 += 16) {
            __m512 r[16];
            for (int c = 0; c < 16; c++)
                r[c] = c < width ? _mm512_loadu_ps(planar + (c0 + c) * planarStride + p0) : _mm512_setzero_ps();
            transpose16(r);
            for (int i = 0; i < 16; i++) store_position(blocked, block / 16 + p0 + i, r[i], bf16, aligned);
        }
        for (long p = whole; p < positions; p++)
            for (long c = 0; c < 16; c++)
                set_blocked_element(blocked, block + p * 16 + c, c < width ? planar[(c0 + c) * planarStride + p] : 0,
                                    bf16);
    }
    _mm_sfence();
}

// A bf16 block's position holds its 16 channels as 8 pairs already (channels 2p, 2p + 1 in one 32-bit
// word), so pair planes are the 32-bit transpose of (positions, 8 words): 16 positions' words
// loaded as the low halves of 16 rows, transposed, the first 8 rows stored.
static inline void unblock_pairs_plain(const uint16_t *blocked, long channels, long positions, uint32_t *pairs,
                                       long pairStride) {
    const uint32_t *words = (const uint32_t *)blocked;
    for (long p = 0; p < (channels + 1) / 2; p++)
        for (long j = 0; j < positions; j++) pairs[p * pairStride + j] = words[(p / 8 * positions + j) * 8 + p % 8];
}

AVX512 static inline void unblock_pairs_avx512(const uint16_t *blocked, long channels, long positions, uint32_t *pairs,
                                               long pairStride) {
    const long whole = positions / 16 * 16;
    const uint32_t *words = (const uint32_t *)blocked;
    for (long c0 = 0; c0 < channels; c0 += 16) {
        const long blockPairs = ((channels - c0 < 16 ? channels - c0 : 16) + 1) / 2;
        const uint32_t *block = words + c0 / 16 * positions * 8;
        uint32_t *to = pairs + c0 / 2 * pairStride;
        for (long p0 = 0; p0 < whole; p0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_castsi512_ps(
                    _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(block + (p0 + i) * 8))));
            transpose16(r);
            for (long k = 0; k < blockPairs; k++) _mm512_storeu_ps((float *)(to + k * pairStride + p0), r[k]);
        }
        for (long k = 0; k < blockPairs; k++)
            for (long j = whole; j < positions; j++) to[k * pairStride + j] = block[j * 8 + k];
    }
}

void sagan_unblock16_bf16_pairs(const uint16_t *blocked, long channels, long positions, uint32_t *pairs,
                                long pairStride) {
    if (sagan_kernels_use_avx512())
        unblock_pairs_avx512(blocked, channels, positions, pairs, pairStride);
    else
        unblock_pairs_plain(blocked, channels, positions, pairs, pairStride);
}

void sagan_unblock16_bf16_pairs_portable(const uint16_t *blocked, long channels, long positions, uint32_t *pairs,
                                         long pairStride) {
    unblock_pairs_plain(blocked, channels, positions, pairs, pairStride);
}

void sagan_unblock16(const float *blocked, long channels, long positions, float *planar, long planarStride) {
    if (sagan_kernels_use_avx512())
        unblock_avx512(blocked, 0, channels, positions, planar, planarStride);
    else
        unblock_plain(blocked, 0, channels, positions, planar, planarStride);
}

void sagan_block16(const float *planar, long planarStride, long channels, long positions, float *blocked) {
    if (sagan_kernels_use_avx512())
        block_avx512(planar, planarStride, channels, positions, blocked, 0);
    else
        block_plain(planar, planarStride, channels, positions, blocked, 0);
}

void sagan_unblock16_bf16(const uint16_t *blocked, long channels, long positions, float *planar, long planarStride) {
    if (sagan_kernels_use_avx512())
        unblock_avx512(blocked, 1, channels, positions, planar, planarStride);
    else
        unblock_plain(blocked, 1, channels, positions, planar, planarStride);
}

void sagan_block16_bf16(const float *planar, long planarStride, long channels, long positions, uint16_t *blocked) {
    if (sagan_kernels_use_avx512())
        block_avx512(planar, planarStride, channels, positions, blocked, 1);
    else
        block_plain(planar, planarStride, channels, positions, blocked, 1);
}

void sagan_unblock16_portable(const float *blocked, long channels, long positions, float *planar, long planarStride) {
    unblock_plain(blocked, 0, channels, positions, planar, planarStride);
}

void sagan_block16_portable(const float *planar, long planarStride, long channels, long positions, float *blocked) {
    block_plain(planar, planarStride, channels, positions, blocked, 0);
}

void sagan_unblock16_bf16_portable(const uint16_t *blocked, long channels, long positions, float *planar,
                                   long planarStride) {
    unblock_plain(blocked, 1, channels, positions, planar, planarStride);
}

void sagan_block16_bf16_portable(const float *planar, long planarStride, long channels, long positions,
                                 uint16_t *blocked) {
    block_plain(planar, planarStride, channels, positions, blocked, 1);
}

// ---- convolution weights with 4x4 kernels ----
//
// OIHW weights (outputs and inputs multiples of 16, 16 taps per kernel) to and from oneDNN's
// OIhw16i16o ("ABcd16b16a": output channel fastest) and OIhw16o16i ("ABcd16a16b": input channel
// fastest), the layouts its convolutions run in. For one (output block, input block) the 16 taps
// of each (o, i) pair are 64 contiguous bytes, so each layout is a 16x16 transpose per channel of
// the block. Streaming stores: the destination is a scratch buffer whose old contents are dead.

AVX512 static inline void store16(float *destination, __m512 value, int streaming) {
    if (streaming)
        _mm512_stream_ps(destination, value);
    else
        _mm512_storeu_ps(destination, value);
}

AVX512 void sagan_weights_to_blocked16(const float *plain, long outputs, long inputs, int outputFastest, float divisor,
                                       float *blocked, long firstBlock, long endBlock) {
    const int streaming = (unsigned long)blocked % 64 == 0;
    const __m512 scale = _mm512_set1_ps(divisor);
    const long inputBlocks = inputs / 16;
    for (long ob = firstBlock; ob < endBlock; ob++) {
        for (long ib = 0; ib < inputBlocks; ib++) {
            float *block = blocked + (ob * inputBlocks + ib) * 16 * 256;
            for (int lane = 0; lane < 16; lane++) {
                __m512 r[16];
                // outputFastest: rows are the 16 output channels for input lane; else the 16 input channels of output
                // lane.
                for (int row = 0; row < 16; row++) {
                    const long o = ob * 16 + (outputFastest ? row : lane), i = ib * 16 + (outputFastest ? lane : row);
                    r[row] = _mm512_loadu_ps(plain + (o * inputs + i) * 16);
                }
                transpose16(r);
                for (int tap = 0; tap < 16; tap++)
                    store16(block + tap * 256 + lane * 16, _mm512_div_ps(r[tap], scale), streaming);
            }
        }
    }
    if (streaming) _mm_sfence();
}

AVX512 void sagan_weights_swap_blocked16(const float *source, long outputs, long inputs, float *destination,
                                         long firstBlock, long endBlock) {
    const int streaming = (unsigned long)destination % 64 == 0;
    const long inputBlocks = inputs / 16;
    for (long ob = firstBlock; ob < endBlock; ob++) {
        for (long ib = 0; ib < inputBlocks; ib++) {
            const long offset = (ob * inputBlocks + ib) * 16 * 256;
            for (int tap = 0; tap < 16; tap++) {
                __m512 r[16];
                for (int row = 0; row < 16; row++) r[row] = _mm512_loadu_ps(source + offset + tap * 256 + row * 16);
                transpose16(r);
                for (int row = 0; row < 16; row++)
                    store16(destination + offset + tap * 256 + row * 16, r[row], streaming);
            }
        }
    }
    if (streaming) _mm_sfence();
}

AVX512 void sagan_weights_from_blocked16(const float *blocked, long outputs, long inputs, int outputFastest,
                                         float *plain, long firstBlock, long endBlock) {
    const int streaming = (unsigned long)plain % 64 == 0;
    const long inputBlocks = inputs / 16;
    for (long ob = firstBlock; ob < endBlock; ob++) {
        for (long ib = 0; ib < inputBlocks; ib++) {
            const float *block = blocked + (ob * inputBlocks + ib) * 16 * 256;
            for (int lane = 0; lane < 16; lane++) {
                __m512 r[16];
                for (int tap = 0; tap < 16; tap++) r[tap] = _mm512_loadu_ps(block + tap * 256 + lane * 16);
                transpose16(r);
                for (int row = 0; row < 16; row++) {
                    const long o = ob * 16 + (outputFastest ? row : lane), i = ib * 16 + (outputFastest ? lane : row);
                    store16(plain + (o * inputs + i) * 16, r[row], streaming);
                }
            }
        }
    }
    if (streaming) _mm_sfence();
}

// The same weights in bf16, in the layouts oneDNN's bf16 convolutions read: OIhw8i16o2i
// ("ABcd8b16a2b", forward) and OIhw8o16i2o ("ABcd8a16b2a", backward data). Each tap's 16x16 square
// is 8 rows of 16 32-bit words; word (p, l) holds channels 2p and 2p + 1 of the paired axis (low
// half first) for lane l of the other: inputs paired and outputs in lanes for the forward layout
// (outputFastest = 1), the other way round for the backward-data one.

/* Words from two rows of Float32 values: `low`'s bf16 in the low halves, `high`'s in the high. */
AVX512 static inline __m512i bf16_pair_words(__m512 low, __m512 high) {
    const __m512i upper = _mm512_set1_epi32((int)0xFFFF0000u);
    return _mm512_or_si512(_mm512_srli_epi32(sagan_bf16_rounded_bits16(_mm512_castps_si512(low)), 16),
                           _mm512_and_si512(sagan_bf16_rounded_bits16(_mm512_castps_si512(high)), upper));
}

AVX512 static inline void store16_words(uint32_t *destination, __m512i words, int streaming) {
    if (streaming)
        _mm512_stream_si512((void *)destination, words);
    else
        _mm512_storeu_si512(destination, words);
}

AVX512 void sagan_weights_to_blocked16_bf16(const float *plain, long outputs, long inputs, int outputFastest,
                                            float divisor, uint32_t *blocked, long firstBlock, long endBlock) {
    (void)outputs;
    const int streaming = (unsigned long)blocked % 64 == 0;
    const __m512 scale = _mm512_set1_ps(divisor);
    const long inputBlocks = inputs / 16;
    for (long ob = firstBlock; ob < endBlock; ob++) {
        for (long ib = 0; ib < inputBlocks; ib++) {
            uint32_t *block = blocked + (ob * inputBlocks + ib) * 16 * 128;
            for (int pair = 0; pair < 8; pair++) {
                __m512 r[2][16]; // r[half][tap], lanes: the unpaired axis, for paired channel 2·pair + half
                for (int half = 0; half < 2; half++) {
                    const int lane = 2 * pair + half;
                    for (int row = 0; row < 16; row++) {
                        const long o = ob * 16 + (outputFastest ? row : lane),
                                   i = ib * 16 + (outputFastest ? lane : row);
                        r[half][row] = _mm512_loadu_ps(plain + (o * inputs + i) * 16);
                    }
                    transpose16(r[half]);
                }
                for (int tap = 0; tap < 16; tap++)
                    store16_words(block + tap * 128 + pair * 16,
                                  bf16_pair_words(_mm512_div_ps(r[0][tap], scale), _mm512_div_ps(r[1][tap], scale)),
                                  streaming);
            }
        }
    }
    if (streaming) _mm_sfence();
}

/* One 16x16 square of bf16 pairs (128 words) from OIhw8i16o2i's order to OIhw8o16i2o's or back. */
AVX512 static inline void swap_square_bf16(const uint32_t *source, uint32_t *destination, int streaming) {
    const __m512i upper = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 r[16]; // the square widened to Float32 (exact), one paired channel per row
    for (int pair = 0; pair < 8; pair++) {
        const __m512i words = _mm512_loadu_si512(source + pair * 16);
        r[2 * pair] = _mm512_castsi512_ps(_mm512_slli_epi32(words, 16));
        r[2 * pair + 1] = _mm512_castsi512_ps(_mm512_and_si512(words, upper));
    }
    transpose16(r);
    for (int pair = 0; pair < 8; pair++) {
        const __m512i low = _mm512_srli_epi32(_mm512_castps_si512(r[2 * pair]), 16);
        const __m512i high = _mm512_and_si512(_mm512_castps_si512(r[2 * pair + 1]), upper);
        store16_words(destination + pair * 16, _mm512_or_si512(low, high), streaming);
    }
}

AVX512 void sagan_weights_swap_blocked16_bf16(const uint32_t *source, long outputs, long inputs, uint32_t *destination,
                                              long firstBlock, long endBlock) {
    (void)outputs;
    const int streaming = (unsigned long)destination % 64 == 0;
    const long inputBlocks = inputs / 16;
    for (long ob = firstBlock; ob < endBlock; ob++) {
        for (long ib = 0; ib < inputBlocks; ib++) {
            const long offset = (ob * inputBlocks + ib) * 16 * 128;
            for (int tap = 0; tap < 16; tap++)
                swap_square_bf16(source + offset + tap * 128, destination + offset + tap * 128, streaming);
        }
    }
    if (streaming) _mm_sfence();
}

AVX512 void sagan_phase_weights_bf16(const uint32_t *weight, long outputs, long inputs, int py, int px,
                                     uint32_t *kernel, long firstBlock, long endBlock) {
    const int streaming = (unsigned long)kernel % 64 == 0;
    const long outputBlocks = outputs / 16, inputBlocks = inputs / 16;
    for (long ib = firstBlock; ib < endBlock; ib++)
        for (long ob = 0; ob < outputBlocks; ob++)
            for (int t = 0; t < 4; t++) {
                const long ky = 3 - py - 2 * (t / 2), kx = 3 - px - 2 * (t % 2);
                swap_square_bf16(weight + ((ob * inputBlocks + ib) * 16 + ky * 4 + kx) * 128,
                                 kernel + ((ib * outputBlocks + ob) * 4 + t) * 128, streaming);
            }
    if (streaming) _mm_sfence();
}

void sagan_interleave_phase_blocked16_bf16(const uint16_t *phase, long planes, long height, long width, int py, int px,
                                           uint16_t *destination) {
    for (long plane = 0; plane < planes; plane++)
        for (long i = 0; i < height; i++)
            for (long j = 0; j < width; j++)
                memcpy(destination + ((plane * 2 * height + 2 * i + py) * 2 * width + 2 * j + px) * 16,
                       phase + ((plane * height + i) * width + j) * 16, 32);
}
