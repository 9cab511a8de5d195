// The input side of a convolution's weight gradient as one matrix product (see kernels.h): each
// output position's window copied out as a row from an image padded with zeros, so that every
// window lies inside it; window rows of four taps (the models' 4x4 kernels) move as 64-bit words.
#include "kernels.h"

#include <string.h>

void sagan_patch_rows_bf16(const uint16_t *padded, long channels, long paddedHeight, long paddedWidth,
                           long kernelHeight, long kernelWidth, long stride, long outputHeight, long outputWidth,
                           uint16_t *rows, long rowStride) {
    const long plane = paddedHeight * paddedWidth, taps = kernelHeight * kernelWidth;
    for (long oy = 0; oy < outputHeight; oy++) {
        for (long ox = 0; ox < outputWidth; ox++) {
            uint16_t *row = rows + (oy * outputWidth + ox) * rowStride;
            const uint16_t *window = padded + oy * stride * paddedWidth + ox * stride;
            if (kernelHeight == 4 && kernelWidth == 4) {
                for (long c = 0; c < channels; c++, window += plane, row += 16) {
                    uint64_t lines[4];
                    for (int ky = 0; ky < 4; ky++) memcpy(&lines[ky], window + ky * paddedWidth, sizeof lines[ky]);
                    memcpy(row, lines, sizeof lines);
                }
                continue;
            }
            for (long c = 0; c < channels; c++, window += plane, row += taps)
                for (long ky = 0; ky < kernelHeight; ky++)
                    memcpy(row + ky * kernelWidth, window + ky * paddedWidth, (size_t)kernelWidth * sizeof *row);
        }
    }
}

void sagan_bf16_row_sums(const uint16_t *matrix, long rows, long columns, float *sums) {
    for (long i = 0; i < rows; i++) {
        const uint16_t *row = matrix + i * columns;
        float lanes[16] = {0};
        long j = 0;
        for (; j + 16 <= columns; j += 16)
            for (int l = 0; l < 16; l++) {
                uint32_t bits = (uint32_t)row[j + l] << 16;
                float value;
                memcpy(&value, &bits, sizeof value);
                lanes[l] += value;
            }
        float sum = 0;
        for (; j < columns; j++) {
            uint32_t bits = (uint32_t)row[j] << 16;
            float value;
            memcpy(&value, &bits, sizeof value);
            sum += value;
        }
        for (int l = 0; l < 16; l++) sum += lanes[l];
        sums[i] = sum;
    }
}
