// Adam in one pass over a parameter, vectorised by the compiler: one version for AVX-512 (chosen at
// run time) and one for any x86-64, from the same loop. The Swift reference loop does one element at
// a time with a scalar square root and division, which made the update compute-bound.
#include "kernels.h"

#include <math.h>

#define ADAM_LOOP                                                                                                      \
    for (long i = 0; i < count; i++) {                                                                                 \
        const float g = gradient[i];                                                                                   \
        const float m = (first ? first[i] : 0.0f) * step->beta1 + g * (1 - step->beta1);                               \
        const float v = (second ? second[i] : 0.0f) * step->beta2 + g * g * (1 - step->beta2);                         \
        firstOut[i] = m;                                                                                               \
        secondOut[i] = v;                                                                                              \
        parameterOut[i] = parameter[i] - m / (sqrtf(v / step->correction2) + step->epsilon) * stepSize;                \
    }

#define ADAM_BODY                                                                                                      \
    const float stepSize = step->learningRate / step->correction1;                                                     \
    if (first && second) {                                                                                             \
        ADAM_LOOP                                                                                                      \
    } else {                                                                                                           \
        first = 0;                                                                                                     \
        second = 0;                                                                                                    \
        ADAM_LOOP                                                                                                      \
    }

#include <immintrin.h>

// Outputs written with streaming stores: they are fresh buffers, so ordinary stores would first read
// every line of them from memory, and this update is bound by memory traffic.
__attribute__((target("avx512f"))) static void adam_avx512(const struct sagan_adam_step *step, long count,
                                                           const float *restrict parameter,
                                                           const float *restrict gradient, const float *restrict first,
                                                           const float *restrict second, float *restrict parameterOut,
                                                           float *restrict firstOut, float *restrict secondOut) {
    const __m512 beta1 = _mm512_set1_ps(step->beta1), beta2 = _mm512_set1_ps(step->beta2);
    const __m512 oneMinusBeta1 = _mm512_set1_ps(1 - step->beta1), oneMinusBeta2 = _mm512_set1_ps(1 - step->beta2);
    const __m512 correction2 = _mm512_set1_ps(step->correction2), epsilon = _mm512_set1_ps(step->epsilon);
    const __m512 scaledStep = _mm512_set1_ps(step->learningRate / step->correction1);
    const int aligned = ((unsigned long)parameterOut | (unsigned long)firstOut | (unsigned long)secondOut) % 64 == 0;
    long i = 0;
    for (; aligned && i + 16 <= count; i += 16) {
        const __m512 g = _mm512_loadu_ps(gradient + i);
        const __m512 m0 = first ? _mm512_loadu_ps(first + i) : _mm512_setzero_ps();
        const __m512 v0 = second ? _mm512_loadu_ps(second + i) : _mm512_setzero_ps();
        const __m512 m = _mm512_add_ps(_mm512_mul_ps(m0, beta1), _mm512_mul_ps(g, oneMinusBeta1));
        const __m512 v = _mm512_add_ps(_mm512_mul_ps(v0, beta2), _mm512_mul_ps(_mm512_mul_ps(g, g), oneMinusBeta2));
        const __m512 denominator = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(v, correction2)), epsilon);
        const __m512 p =
            _mm512_sub_ps(_mm512_loadu_ps(parameter + i), _mm512_mul_ps(_mm512_div_ps(m, denominator), scaledStep));
        _mm512_stream_ps(firstOut + i, m);
        _mm512_stream_ps(secondOut + i, v);
        _mm512_stream_ps(parameterOut + i, p);
    }
    _mm_sfence();
    parameter += i, gradient += i, parameterOut += i, firstOut += i, secondOut += i, count -= i;
    if (first) first += i;
    if (second) second += i;
    ADAM_BODY
}

static void adam_plain(const struct sagan_adam_step *step, long count, const float *restrict parameter,
                       const float *restrict gradient, const float *restrict first, const float *restrict second,
                       float *restrict parameterOut, float *restrict firstOut, float *restrict secondOut) {
    ADAM_BODY
}

void sagan_adam_update(const struct sagan_adam_step *step, long count, const float *parameter, const float *gradient,
                       const float *first, const float *second, float *parameterOut, float *firstOut,
                       float *secondOut) {
    if (sagan_kernels_use_avx512())
        adam_avx512(step, count, parameter, gradient, first, second, parameterOut, firstOut, secondOut);
    else
        adam_plain(step, count, parameter, gradient, first, second, parameterOut, firstOut, secondOut);
}
