// Memory-bound passes of spectral normalisation. Plain C that compilers vectorise: the sums keep 16
// partial accumulators so the additions can run in SIMD lanes, always combined in the same order.
#include "kernels.h"

#include <immintrin.h>

float sagan_dot(const float *restrict a, const float *restrict b, long count) {
    float partial[16] = {0};
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        for (int lane = 0; lane < 16; lane++) partial[lane] += a[i + lane] * b[i + lane];
    }
    float sum = 0;
    for (int lane = 0; lane < 16; lane++) sum += partial[lane];
    for (; i < count; i++) sum += a[i] * b[i];
    return sum;
}

void sagan_add_transposed_product(const float *restrict matrix, long rows, long columns, const float *restrict x,
                                  float *restrict y, long begin, long end) {
    for (long row = 0; row < rows; row++) {
        const float weight = x[row];
        const float *restrict values = matrix + row * columns;
        for (long column = begin; column < end; column++) y[column] += weight * values[column];
    }
}

void sagan_add_row_products(const float *restrict matrix, long columns, const float *restrict x, float *restrict y,
                            long begin, long end) {
    for (long row = begin; row < end; row++) y[row] += sagan_dot(matrix + row * columns, x, columns);
}

// y is a fresh buffer: streaming stores skip reading its lines from memory first.
__attribute__((target("avx512f"))) static void divide_avx512(const float *restrict x, float divisor, float *restrict y,
                                                             long count) {
    long i = 0;
    if ((unsigned long)y % 64 == 0) {
        const __m512 d = _mm512_set1_ps(divisor);
        for (; i + 16 <= count; i += 16) _mm512_stream_ps(y + i, _mm512_div_ps(_mm512_loadu_ps(x + i), d));
        _mm_sfence();
    }
    for (; i < count; i++) y[i] = x[i] / divisor;
}

void sagan_divide(const float *restrict x, float divisor, float *restrict y, long count) {
    if (sagan_kernels_use_avx512()) return divide_avx512(x, divisor, y, count);
    for (long i = 0; i < count; i++) y[i] = x[i] / divisor;
}

// The gradient is a fresh buffer too: rows written with streaming stores where they are aligned.
__attribute__((target("avx512f"))) static void
spectral_norm_gradient_avx512(const float *restrict gradient, const float *restrict u, const float *restrict v,
                              float lambda, float sigma, long outputs, long inner, float *restrict result,
                              long rowBegin, long rowEnd) {
    const __m512 divisor = _mm512_set1_ps(sigma);
    for (long row = rowBegin; row < rowEnd; row++) {
        const float scaled = lambda * u[row % outputs];
        const __m512 scale = _mm512_set1_ps(scaled);
        const float *restrict vBlock = v + row / outputs * inner;
        const float *restrict gradientRow = gradient + row * inner;
        float *restrict resultRow = result + row * inner;
        long j = 0;
        if ((unsigned long)resultRow % 64 == 0) {
            for (; j + 16 <= inner; j += 16) {
                const __m512 value =
                    _mm512_fnmadd_ps(scale, _mm512_loadu_ps(vBlock + j), _mm512_loadu_ps(gradientRow + j));
                _mm512_stream_ps(resultRow + j, _mm512_div_ps(value, divisor));
            }
        }
        for (; j < inner; j++) resultRow[j] = (gradientRow[j] - scaled * vBlock[j]) / sigma;
    }
    _mm_sfence();
}

void sagan_spectral_norm_gradient(const float *restrict gradient, const float *restrict u, const float *restrict v,
                                  float lambda, float sigma, long outputs, long inner, float *restrict result,
                                  long rowBegin, long rowEnd) {
    if (sagan_kernels_use_avx512()) {
        return spectral_norm_gradient_avx512(gradient, u, v, lambda, sigma, outputs, inner, result, rowBegin, rowEnd);
    }
    for (long row = rowBegin; row < rowEnd; row++) {
        const float scaled = lambda * u[row % outputs];
        const float *restrict vBlock = v + row / outputs * inner;
        const float *restrict gradientRow = gradient + row * inner;
        float *restrict resultRow = result + row * inner;
        for (long j = 0; j < inner; j++) resultRow[j] = (gradientRow[j] - scaled * vBlock[j]) / sigma;
    }
}
