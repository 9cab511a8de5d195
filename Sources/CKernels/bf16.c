// bf16 helpers: rounding Float32 values to bf16 precision, kept in Float32.
#include "kernels.h"

#include <stdint.h>
#include <string.h>

void sagan_round_bf16(float *data, long count) {
    // Plain integer arithmetic the compiler vectorises; NaN payloads keep their quiet bit set.
    for (long i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &data[i], sizeof bits);
        uint32_t isNaN = (bits & 0x7FFFFFFFu) > 0x7F800000u;
        uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
        uint32_t result = isNaN ? (bits | 0x00400000u) & 0xFFFF0000u : rounded;
        memcpy(&data[i], &result, sizeof result);
    }
}

void sagan_scale_columns_round_bf16(float *tile, int rows, int columns, int stride, const float *scales) {
    for (int i = 0; i < rows; i++) {
        float *row = tile + (long)i * stride;
        for (int j = 0; j < columns; j++) row[j] *= scales[j];
        sagan_round_bf16(row, columns);
    }
}
