// See include/image_codecs.h. Error handling: libjpeg's error_exit longjmps back into the function
// that called it; libpng is used through its simplified API, which reports errors in png_image.
#include "image_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <zlib.h>

static void set_error(char *error, size_t size, const char *message) {
    if (error && size) snprintf(error, size, "%s", message);
}

void sagan_free(void *pointer) {
    free(pointer);
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warnings;
    int truncated;
} jpeg_error_state;

static void jpeg_on_error(j_common_ptr info) {
    jpeg_error_state *state = (jpeg_error_state *)info->err;
    (*info->err->format_message)(info, state->message);
    longjmp(state->jump, 1);
}

static void jpeg_on_message(j_common_ptr info, int level) {
    if (level >= 0) return; // trace messages
    jpeg_error_state *state = (jpeg_error_state *)info->err;
    if (info->err->msg_code == JWRN_JPEG_EOF) state->truncated = 1;
    state->warnings += 1;
}

int sagan_jpeg_decode(const uint8_t *data, size_t size, size_t max_pixels, sagan_image *out, char *error,
                      size_t error_size) {
    memset(out, 0, sizeof *out);
    if (size == 0) {
        set_error(error, error_size, "empty file");
        return 1;
    }
    struct jpeg_decompress_struct info;
    jpeg_error_state state;
    memset(&state, 0, sizeof state);
    info.err = jpeg_std_error(&state.manager);
    state.manager.error_exit = jpeg_on_error;
    state.manager.emit_message = jpeg_on_message;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    if (setjmp(state.jump)) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        free(row);
        free(out->exif);
        out->exif = NULL;
        set_error(error, error_size, state.message);
        return 2;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, (unsigned char *)data, (unsigned long)size);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&info, TRUE);
    if ((size_t)info.image_width * (size_t)info.image_height > max_pixels) {
        snprintf(state.message, sizeof state.message, "image of %ux%u pixels exceeds the limit of %zu pixels",
                 info.image_width, info.image_height, max_pixels);
        jpeg_destroy_decompress(&info);
        set_error(error, error_size, state.message);
        return 3;
    }
    for (jpeg_saved_marker_ptr marker = info.marker_list; marker; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1 && marker->data_length > 6 && memcmp(marker->data, "Exif\0\0", 6) == 0) {
            out->exif = malloc(marker->data_length - 6);
            if (out->exif) {
                memcpy(out->exif, marker->data + 6, marker->data_length - 6);
                out->exif_size = marker->data_length - 6;
            }
            break;
        }
    }
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    int gray = info.jpeg_color_space == JCS_GRAYSCALE;
    info.out_color_space = cmyk ? JCS_CMYK : (gray ? JCS_GRAYSCALE : JCS_RGB);
    jpeg_start_decompress(&info);
    int channels = gray ? 1 : 3;
    size_t stride = (size_t)info.output_width * (size_t)info.output_components;
    pixels = malloc((size_t)info.output_width * info.output_height * channels);
    row = malloc(stride);
    if (!pixels || !row) {
        snprintf(state.message, sizeof state.message, "out of memory");
        longjmp(state.jump, 1);
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW rows[1] = {row};
        JDIMENSION y = info.output_scanline;
        jpeg_read_scanlines(&info, rows, 1);
        uint8_t *target = pixels + (size_t)y * info.output_width * channels;
        if (cmyk) {
            // Adobe writes CMYK inverted (as PIL assumes too): stored c = 255 − C, so R = c·k/255.
            int inverted = info.saw_Adobe_marker;
            for (JDIMENSION x = 0; x < info.output_width; x++) {
                int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) {
                    c = 255 - c;
                    m = 255 - m;
                    yy = 255 - yy;
                    k = 255 - k;
                }
                target[3 * x] = (uint8_t)((c * k + 127) / 255);
                target[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                target[3 * x + 2] = (uint8_t)((yy * k + 127) / 255);
            }
        } else {
            memcpy(target, row, stride);
        }
        if (state.truncated) break;
    }
    if (state.truncated) {
        snprintf(state.message, sizeof state.message, "truncated: premature end of JPEG data");
        longjmp(state.jump, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    free(row);
    out->pixels = pixels;
    out->width = (int)info.output_width;
    out->height = (int)info.output_height;
    out->channels = channels;
    out->source_kind = cmyk ? SAGAN_SOURCE_CMYK : (gray ? SAGAN_SOURCE_GRAY : SAGAN_SOURCE_RGB);
    out->source_bit_depth = 8;
    out->warnings = state.warnings;
    return 0;
}

int sagan_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality, uint8_t **out,
                      size_t *out_size, char *error, size_t error_size) {
    *out = NULL;
    *out_size = 0;
    if (channels != 1 && channels != 3 && channels != 4) {
        set_error(error, error_size, "JPEG needs 1, 3 or 4 (CMYK) channels");
        return 1;
    }
    struct jpeg_compress_struct info;
    jpeg_error_state state;
    memset(&state, 0, sizeof state);
    info.err = jpeg_std_error(&state.manager);
    state.manager.error_exit = jpeg_on_error;
    unsigned char *buffer = NULL;
    unsigned long length = 0;
    if (setjmp(state.jump)) {
        jpeg_destroy_compress(&info);
        free(buffer);
        set_error(error, error_size, state.message);
        return 2;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, &buffer, &length);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : (channels == 3 ? JCS_RGB : JCS_CMYK);
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW rows[1] = {(JSAMPROW)(pixels + (size_t)info.next_scanline * width * channels)};
        jpeg_write_scanlines(&info, rows, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    *out = buffer;
    *out_size = length;
    return 0;
}

// MARK: PNG

int sagan_png_decode(const uint8_t *data, size_t size, size_t max_pixels, sagan_image *out, char *error,
                     size_t error_size) {
    memset(out, 0, sizeof *out);
    if (size == 0) {
        set_error(error, error_size, "empty file");
        return 1;
    }
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        set_error(error, error_size, image.message);
        png_image_free(&image);
        return 2;
    }
    if ((size_t)image.width * (size_t)image.height > max_pixels) {
        char message[128];
        snprintf(message, sizeof message, "image of %ux%u pixels exceeds the limit of %zu pixels", image.width,
                 image.height, max_pixels);
        set_error(error, error_size, message);
        png_image_free(&image);
        return 3;
    }
    int color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
    int alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    out->source_kind = (image.format & PNG_FORMAT_FLAG_COLORMAP) ? SAGAN_SOURCE_PALETTE
                     : color                                     ? (alpha ? SAGAN_SOURCE_RGBA : SAGAN_SOURCE_RGB)
                             : (alpha ? SAGAN_SOURCE_GRAY_ALPHA : SAGAN_SOURCE_GRAY);
    out->source_bit_depth = (image.format & PNG_FORMAT_FLAG_LINEAR) ? 16 : 8;
    image.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    size_t bytes = PNG_IMAGE_SIZE(image);
    uint8_t *pixels = malloc(bytes);
    if (!pixels) {
        set_error(error, error_size, "out of memory");
        png_image_free(&image);
        return 4;
    }
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        set_error(error, error_size, image.message);
        free(pixels);
        png_image_free(&image);
        return 5;
    }
    out->pixels = pixels;
    out->width = (int)image.width;
    out->height = (int)image.height;
    out->channels = (int)PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    out->warnings = image.warning_or_error & PNG_IMAGE_WARNING ? 1 : 0;
    return 0;
}

int sagan_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *out_size,
                     char *error, size_t error_size) {
    *out = NULL;
    *out_size = 0;
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    switch (channels) {
    case 1:
        image.format = PNG_FORMAT_GRAY;
        break;
    case 2:
        image.format = PNG_FORMAT_GA;
        break;
    case 3:
        image.format = PNG_FORMAT_RGB;
        break;
    case 4:
        image.format = PNG_FORMAT_RGBA;
        break;
    default:
        set_error(error, error_size, "PNG needs 1 to 4 channels");
        return 1;
    }
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        set_error(error, error_size, image.message);
        return 2;
    }
    uint8_t *buffer = malloc(size);
    if (!buffer) {
        set_error(error, error_size, "out of memory");
        return 3;
    }
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        set_error(error, error_size, image.message);
        free(buffer);
        return 4;
    }
    *out = buffer;
    *out_size = size;
    return 0;
}

// MARK: gzip

int sagan_gunzip(const uint8_t *data, size_t size, size_t max_output, uint8_t **out, size_t *out_size, char *error,
                 size_t error_size) {
    *out = NULL;
    *out_size = 0;
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit2(&stream, 15 + 32) != Z_OK) {
        set_error(error, error_size, "zlib initialisation failed");
        return 1;
    }
    size_t capacity = size * 4 + 1024, length = 0;
    uint8_t *buffer = malloc(capacity);
    if (!buffer) {
        inflateEnd(&stream);
        set_error(error, error_size, "out of memory");
        return 2;
    }
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)size; // the callers' files are far below 4 GiB
    int status = Z_OK;
    while (status != Z_STREAM_END) {
        if (length == capacity) {
            if (capacity >= max_output) {
                free(buffer);
                inflateEnd(&stream);
                set_error(error, error_size, "decompressed data exceeds the size limit");
                return 3;
            }
            capacity = capacity * 2 > max_output ? max_output : capacity * 2;
            uint8_t *grown = realloc(buffer, capacity);
            if (!grown) {
                free(buffer);
                inflateEnd(&stream);
                set_error(error, error_size, "out of memory");
                return 2;
            }
            buffer = grown;
        }
        stream.next_out = buffer + length;
        stream.avail_out = (uInt)(capacity - length);
        status = inflate(&stream, Z_NO_FLUSH);
        length = capacity - stream.avail_out;
        if (status == Z_BUF_ERROR && stream.avail_in == 0) {
            free(buffer);
            inflateEnd(&stream);
            set_error(error, error_size, "truncated: the compressed data ends early");
            return 4;
        }
        if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
            free(buffer);
            inflateEnd(&stream);
            set_error(error, error_size, stream.msg ? stream.msg : "corrupt compressed data");
            return 5;
        }
    }
    inflateEnd(&stream);
    *out = buffer;
    *out_size = length;
    return 0;
}

int sagan_gzip(const uint8_t *data, size_t size, uint8_t **out, size_t *out_size, char *error, size_t error_size) {
    *out = NULL;
    *out_size = 0;
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        set_error(error, error_size, "zlib initialisation failed");
        return 1;
    }
    size_t capacity = deflateBound(&stream, (uLong)size) + 32;
    uint8_t *buffer = malloc(capacity);
    if (!buffer) {
        deflateEnd(&stream);
        set_error(error, error_size, "out of memory");
        return 2;
    }
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)size;
    stream.next_out = buffer;
    stream.avail_out = (uInt)capacity;
    int status = deflate(&stream, Z_FINISH);
    deflateEnd(&stream);
    if (status != Z_STREAM_END) {
        free(buffer);
        set_error(error, error_size, "compression failed");
        return 3;
    }
    *out = buffer;
    *out_size = capacity - stream.avail_out;
    return 0;
}
