// Thin C wrappers around libjpeg-turbo, libpng and zlib for the Datasets target.
//
// The libraries report fatal errors by longjmp (libjpeg, libpng) or need C macros (zlib's
// inflateInit2), neither of which Swift can use directly. Every function here returns 0 on success
// or a non-zero code with a message in `error`, and never aborts the process.
#ifndef SAGAN_IMAGE_CODECS_H
#define SAGAN_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

/// What a decoder found in the file, before conversion.
typedef enum {
    SAGAN_SOURCE_GRAY = 1,
    SAGAN_SOURCE_GRAY_ALPHA = 2,
    SAGAN_SOURCE_RGB = 3,
    SAGAN_SOURCE_RGBA = 4,
    SAGAN_SOURCE_CMYK = 5,
    SAGAN_SOURCE_PALETTE = 6,
} sagan_source_kind;

typedef struct {
    /// Decoded 8-bit pixels, row-major, `channels` interleaved; free with sagan_free.
    uint8_t *pixels;
    int width;
    int height;
    /// 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
    int channels;
    sagan_source_kind source_kind;
    /// Bits per sample in the file (8 or 16 for PNG; 8 for JPEG).
    int source_bit_depth;
    /// The payload of a JPEG APP1 "Exif" segment (after "Exif\0\0"), or NULL; free with sagan_free.
    uint8_t *exif;
    size_t exif_size;
    /// Recoverable warnings the decoder reported (corrupt but decodable data).
    int warnings;
} sagan_image;

/// Decodes a JPEG held in memory. Refuses images of more than `max_pixels` pixels before
/// allocating them, and treats a premature end of data as an error.
int sagan_jpeg_decode(const uint8_t *data, size_t size, size_t max_pixels, sagan_image *out, char *error,
                      size_t error_size);

/// Decodes a PNG held in memory (any colour type, 8 or 16 bits) to 8-bit gray, gray+alpha, RGB or RGBA.
int sagan_png_decode(const uint8_t *data, size_t size, size_t max_pixels, sagan_image *out, char *error,
                     size_t error_size);

/// Encodes 8-bit gray (1 channel), RGB (3) or CMYK (4, stored as given with an Adobe marker) pixels as a JPEG.
int sagan_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality, uint8_t **out,
                      size_t *out_size, char *error, size_t error_size);

/// Encodes 8-bit gray, gray+alpha, RGB or RGBA pixels as a PNG.
int sagan_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *out_size,
                     char *error, size_t error_size);

/// Inflates gzip (or zlib) data, refusing to produce more than `max_output` bytes.
int sagan_gunzip(const uint8_t *data, size_t size, size_t max_output, uint8_t **out, size_t *out_size, char *error,
                 size_t error_size);

/// Compresses data in the gzip format.
int sagan_gzip(const uint8_t *data, size_t size, uint8_t **out, size_t *out_size, char *error, size_t error_size);

void sagan_free(void *pointer);

#endif
