/* Raw-sample PNG I/O over libpng's classic API; see include/cpngsupport.h for the why. */
#include "cpngsupport.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything that must be released on the error path lives on the heap, reached through one pointer
 * that is not modified after setjmp, so nothing depends on indeterminate automatic variables. */
typedef struct {
    char *err;
    size_t errlen;
    FILE *fp;
    png_structp png;
    png_infop info;
    unsigned char *raw;      /* decoded rows, or one row being encoded */
    png_bytep *rows;
    float *out;
    int reading;             /* 1 while decoding: libpng's own messages then mean corrupt data */
    int own_message;         /* 1 when the error was raised by cpngs_fail with a complete message */
} cpngs_ctx;

static void cpngs_set_error(cpngs_ctx *ctx, const char *message) {
    if (ctx->err != NULL && ctx->errlen > 0) snprintf(ctx->err, ctx->errlen, "%s", message);
}

/* libpng's messages are terse ("IDAT: CRC error"): say what they mean for the user. */
static void cpngs_on_error(png_structp png, png_const_charp message) {
    cpngs_ctx *ctx = (cpngs_ctx *)png_get_error_ptr(png);
    if (ctx->own_message) {
        cpngs_set_error(ctx, message);
    } else {
        char full[320];
        snprintf(full, sizeof full, "%s (libpng: %s)", ctx->reading ? "corrupt PNG data" : "cannot encode PNG", message);
        cpngs_set_error(ctx, full);
    }
    png_longjmp(png, 1);
}

/* Raises an error whose message is already complete and user-facing. */
static void cpngs_fail(png_structp png, const char *message) {
    cpngs_ctx *ctx = (cpngs_ctx *)png_get_error_ptr(png);
    ctx->own_message = 1;
    png_error(png, message);
}

/* Warnings (unknown chunks, sRGB profile quirks) are not the user's problem: ignore them. */
static void cpngs_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/* Our own read function, so a short file says "truncated" instead of libpng's "Read Error". */
static void cpngs_read_data(png_structp png, png_bytep data, size_t length) {
    cpngs_ctx *ctx = (cpngs_ctx *)png_get_io_ptr(png);
    size_t got = fread(data, 1, length, ctx->fp);
    if (got != length) {
        if (feof(ctx->fp)) cpngs_fail(png, "file is truncated (unexpected end of data)");
        char message[256];
        snprintf(message, sizeof message, "read error: %s", strerror(errno));
        cpngs_fail(png, message);
    }
}

static void cpngs_release(cpngs_ctx *ctx, int reading) {
    if (ctx->png != NULL) {
        if (reading) png_destroy_read_struct(&ctx->png, ctx->info ? &ctx->info : NULL, NULL);
        else png_destroy_write_struct(&ctx->png, ctx->info ? &ctx->info : NULL);
    }
    if (ctx->fp != NULL) fclose(ctx->fp);
    free(ctx->raw);
    free(ctx->rows);
    free(ctx->out);
    free(ctx);
}

/* Opens the file, checks the signature and creates the reader. Returns non-zero (with err set) on
 * failure; on success the context's fp, png and info are ready, positioned after the signature. */
static int cpngs_open(const char *path, cpngs_ctx *ctx) {
    ctx->reading = 1;
    ctx->fp = fopen(path, "rb");
    if (ctx->fp == NULL) {
        char message[256];
        snprintf(message, sizeof message, "cannot open: %s", strerror(errno));
        cpngs_set_error(ctx, message);
        return 1;
    }
    unsigned char signature[8];
    size_t got = fread(signature, 1, 8, ctx->fp);
    if (got == 0) {
        cpngs_set_error(ctx, "file is empty");
        return 1;
    }
    if (got < 8 || png_sig_cmp(signature, 0, 8) != 0) {
        cpngs_set_error(ctx, got < 8 && png_sig_cmp(signature, 0, got) == 0
                                 ? "file is truncated (shorter than the PNG signature)"
                                 : "not a PNG file (the PNG signature is missing)");
        return 1;
    }
    ctx->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, cpngs_on_error, cpngs_on_warning);
    if (ctx->png == NULL) {
        cpngs_set_error(ctx, "libpng could not allocate a reader");
        return 1;
    }
    ctx->info = png_create_info_struct(ctx->png);
    if (ctx->info == NULL) {
        cpngs_set_error(ctx, "libpng could not allocate a header");
        return 1;
    }
    return 0;
}

static void cpngs_fill_info(cpngs_ctx *ctx, cpngs_info *info) {
    info->width = png_get_image_width(ctx->png, ctx->info);
    info->height = png_get_image_height(ctx->png, ctx->info);
    info->color_type = png_get_color_type(ctx->png, ctx->info);
    info->stored_bit_depth = png_get_bit_depth(ctx->png, ctx->info);
    int channels = 1;
    switch (info->color_type) {
    case PNG_COLOR_TYPE_GRAY: channels = 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: channels = 2; break;
    case PNG_COLOR_TYPE_RGB: channels = 3; break;
    case PNG_COLOR_TYPE_PALETTE: channels = 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: channels = 4; break;
    }
    if (png_get_valid(ctx->png, ctx->info, PNG_INFO_tRNS) &&
        (info->color_type == PNG_COLOR_TYPE_GRAY || info->color_type == PNG_COLOR_TYPE_RGB ||
         info->color_type == PNG_COLOR_TYPE_PALETTE))
        channels += 1;
    info->channels = channels;
    info->bit_depth = info->stored_bit_depth == 16 ? 16 : 8;
}

int cpngs_read_info(const char *path, cpngs_info *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    cpngs_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return 1;
    ctx->err = err;
    ctx->errlen = errlen;
    if (cpngs_open(path, ctx) != 0) {
        cpngs_release(ctx, 1);
        return 1;
    }
    if (setjmp(png_jmpbuf(ctx->png))) {
        cpngs_release(ctx, 1);
        return 1;
    }
    png_set_read_fn(ctx->png, ctx, cpngs_read_data);
    png_set_sig_bytes(ctx->png, 8);
    png_read_info(ctx->png, ctx->info);
    cpngs_fill_info(ctx, info);
    cpngs_release(ctx, 1);
    return 0;
}

int cpngs_read(const char *path, size_t max_pixels, cpngs_info *info, float **out, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    cpngs_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return 1;
    ctx->err = err;
    ctx->errlen = errlen;
    if (cpngs_open(path, ctx) != 0) {
        cpngs_release(ctx, 1);
        return 1;
    }
    if (setjmp(png_jmpbuf(ctx->png))) {
        cpngs_release(ctx, 1);
        return 1;
    }
    png_set_read_fn(ctx->png, ctx, cpngs_read_data);
    png_set_sig_bytes(ctx->png, 8);
    png_read_info(ctx->png, ctx->info);
    cpngs_fill_info(ctx, info);
    size_t width = info->width, height = info->height;
    if (max_pixels > 0 && width * height > max_pixels) {
        char message[160];
        snprintf(message, sizeof message, "image is too large (%zux%zu pixels, limit %zu)", width, height, max_pixels);
        cpngs_fail(ctx->png, message);
    }

    /* Expand to whole 8- or 16-bit samples; the values scale to the full range of the depth. */
    if (info->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(ctx->png);
    if (info->color_type == PNG_COLOR_TYPE_GRAY && info->stored_bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(ctx->png);
    if (png_get_valid(ctx->png, ctx->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(ctx->png);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (info->stored_bit_depth == 16) png_set_swap(ctx->png);
#endif
    (void)png_set_interlace_handling(ctx->png);
    png_read_update_info(ctx->png, ctx->info);

    int channels = png_get_channels(ctx->png, ctx->info);
    int depth = png_get_bit_depth(ctx->png, ctx->info);
    if (channels != info->channels || (depth != 8 && depth != 16)) cpngs_fail(ctx->png, "unsupported sample layout");
    size_t rowbytes = png_get_rowbytes(ctx->png, ctx->info);
    ctx->raw = malloc(rowbytes * height);
    ctx->rows = malloc(sizeof(png_bytep) * height);
    ctx->out = malloc(sizeof(float) * width * height * (size_t)channels);
    if (ctx->raw == NULL || ctx->rows == NULL || ctx->out == NULL) cpngs_fail(ctx->png, "out of memory");
    for (size_t y = 0; y < height; y++) ctx->rows[y] = ctx->raw + y * rowbytes;
    png_read_image(ctx->png, ctx->rows);
    png_read_end(ctx->png, NULL);

    float *dst = ctx->out;
    if (depth == 8) {
        float table[256];
        for (int v = 0; v < 256; v++) table[v] = (float)v / 255.0f;
        for (size_t y = 0; y < height; y++) {
            const unsigned char *src = ctx->rows[y];
            float *row = dst + y * width * (size_t)channels;
            for (size_t i = 0; i < width * (size_t)channels; i++) row[i] = table[src[i]];
        }
    } else {
        for (size_t y = 0; y < height; y++) {
            const uint16_t *src = (const uint16_t *)(const void *)ctx->rows[y];
            float *row = dst + y * width * (size_t)channels;
            for (size_t i = 0; i < width * (size_t)channels; i++) row[i] = (float)src[i] / 65535.0f;
        }
    }
    *out = ctx->out;
    ctx->out = NULL; /* ownership moves to the caller */
    cpngs_release(ctx, 1);
    return 0;
}

void cpngs_free(float *buffer) { free(buffer); }

int cpngs_write(const char *path, const float *samples, uint32_t width, uint32_t height,
                int channels, int bit_depth, char *err, size_t errlen) {
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    cpngs_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return 1;
    ctx->err = err;
    ctx->errlen = errlen;
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || width == 0 || height == 0) {
        cpngs_set_error(ctx, "unsupported layout (need 1-4 channels, 8 or 16 bits, non-empty)");
        cpngs_release(ctx, 0);
        return 1;
    }
    ctx->fp = fopen(path, "wb");
    if (ctx->fp == NULL) {
        char message[256];
        snprintf(message, sizeof message, "cannot create: %s", strerror(errno));
        cpngs_set_error(ctx, message);
        cpngs_release(ctx, 0);
        return 1;
    }
    ctx->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, cpngs_on_error, cpngs_on_warning);
    if (ctx->png == NULL || (ctx->info = png_create_info_struct(ctx->png)) == NULL) {
        cpngs_set_error(ctx, "libpng could not allocate a writer");
        cpngs_release(ctx, 0);
        return 1;
    }
    if (setjmp(png_jmpbuf(ctx->png))) {
        cpngs_release(ctx, 0);
        return 1;
    }
    png_init_io(ctx->png, ctx->fp);
    png_set_IHDR(ctx->png, ctx->info, width, height, bit_depth, color_types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(ctx->png, ctx->info);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (bit_depth == 16) png_set_swap(ctx->png);
#endif
    size_t per_row = (size_t)width * (size_t)channels;
    ctx->raw = malloc(per_row * (size_t)(bit_depth / 8));
    if (ctx->raw == NULL) cpngs_fail(ctx->png, "out of memory");
    const float scale = bit_depth == 8 ? 255.0f : 65535.0f;
    for (size_t y = 0; y < height; y++) {
        const float *src = samples + y * per_row;
        for (size_t i = 0; i < per_row; i++) {
            float v = src[i];
            v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* also maps NaN to 0 */
            unsigned level = (unsigned)(v * scale + 0.5f);
            if (bit_depth == 8) ctx->raw[i] = (unsigned char)level;
            else ((uint16_t *)(void *)ctx->raw)[i] = (uint16_t)level;
        }
        png_write_row(ctx->png, ctx->raw);
    }
    png_write_end(ctx->png, NULL);
    png_destroy_write_struct(&ctx->png, &ctx->info);
    FILE *fp = ctx->fp;
    ctx->fp = NULL;
    if (fflush(fp) != 0 || ferror(fp)) {
        char message[256];
        snprintf(message, sizeof message, "write failed: %s", strerror(errno));
        cpngs_set_error(ctx, message);
        fclose(fp);
        cpngs_release(ctx, 0);
        return 1;
    }
    if (fclose(fp) != 0) {
        char message[256];
        snprintf(message, sizeof message, "write failed: %s", strerror(errno));
        cpngs_set_error(ctx, message);
        cpngs_release(ctx, 0);
        return 1;
    }
    cpngs_release(ctx, 0);
    return 0;
}
