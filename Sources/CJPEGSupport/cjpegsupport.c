/* JPEG I/O over libjpeg-turbo; see include/cjpegsupport.h for the why. */
#include "cjpegsupport.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

/* Everything released on the error path is reached through this heap context, which is not
 * modified between setjmp and longjmp in a way the error path depends on. */
typedef struct {
    struct jpeg_error_mgr pub;   /* first, so the libjpeg error manager pointer is the context */
    jmp_buf jump;
    char *err;
    size_t errlen;
    FILE *fp;
    int decompress_ready;
    int compress_ready;
    struct jpeg_decompress_struct dinfo;
    struct jpeg_compress_struct cinfo;
    unsigned char *row;
    float *out;
} cjpegs_ctx;

static void cjpegs_set_error(cjpegs_ctx *ctx, const char *message) {
    if (ctx->err != NULL && ctx->errlen > 0) snprintf(ctx->err, ctx->errlen, "%s", message);
}

static void cjpegs_fail_with_library_message(j_common_ptr cinfo) {
    cjpegs_ctx *ctx = (cjpegs_ctx *)(void *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    char full[JMSG_LENGTH_MAX + 64];
    snprintf(full, sizeof full, "%s (libjpeg: %s)",
             cinfo->is_decompressor ? "cannot decode JPEG" : "cannot encode JPEG", buffer);
    cjpegs_set_error(ctx, full);
    longjmp(ctx->jump, 1);
}

/* A libjpeg error: the message says what, the caller's file name is added in Swift. */
static void cjpegs_error_exit(j_common_ptr cinfo) { cjpegs_fail_with_library_message(cinfo); }

/* Warnings (msg_level -1) that mean the pixels are damaged become errors; other messages (trace
 * output, an unknown JFIF revision, extraneous bytes between markers) are ignored. */
static void cjpegs_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF) {
        cjpegs_set_error((cjpegs_ctx *)(void *)cinfo->err, "file is truncated (premature end of JPEG data)");
        longjmp(((cjpegs_ctx *)(void *)cinfo->err)->jump, 1);
    }
    if (code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC ||
        code == JWRN_ARITH_BAD_CODE || code == JWRN_BOGUS_PROGRESSION || code == JWRN_NOT_SEQUENTIAL)
        cjpegs_fail_with_library_message(cinfo);
}

static void cjpegs_release(cjpegs_ctx *ctx) {
    if (ctx->decompress_ready) jpeg_destroy_decompress(&ctx->dinfo);
    if (ctx->compress_ready) jpeg_destroy_compress(&ctx->cinfo);
    if (ctx->fp != NULL) fclose(ctx->fp);
    free(ctx->row);
    free(ctx->out);
    free(ctx);
}

static cjpegs_ctx *cjpegs_new(char *err, size_t errlen) {
    cjpegs_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return NULL;
    ctx->err = err;
    ctx->errlen = errlen;
    jpeg_std_error(&ctx->pub);
    ctx->pub.error_exit = cjpegs_error_exit;
    ctx->pub.emit_message = cjpegs_emit_message;
    return ctx;
}

/* Opens `path`, checks it is not empty and reads the header. 0 on success (before any longjmp
 * can happen the caller must have called setjmp: this runs inside the caller's setjmp scope). */
static int cjpegs_open(const char *path, cjpegs_ctx *ctx) {
    ctx->fp = fopen(path, "rb");
    if (ctx->fp == NULL) {
        char message[256];
        snprintf(message, sizeof message, "cannot open: %s", strerror(errno));
        cjpegs_set_error(ctx, message);
        return 1;
    }
    int first = fgetc(ctx->fp);
    if (first == EOF) {
        cjpegs_set_error(ctx, "file is empty");
        return 1;
    }
    rewind(ctx->fp);
    ctx->dinfo.err = &ctx->pub;
    jpeg_create_decompress(&ctx->dinfo);
    ctx->decompress_ready = 1;
    jpeg_stdio_src(&ctx->dinfo, ctx->fp);
    jpeg_read_header(&ctx->dinfo, TRUE);
    return 0;
}

static int cjpegs_prepare(cjpegs_ctx *ctx, cjpegs_info *info) {
    struct jpeg_decompress_struct *d = &ctx->dinfo;
    info->width = d->image_width;
    info->height = d->image_height;
    info->bit_depth = 8;
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE: info->channels = 1; d->out_color_space = JCS_GRAYSCALE; break;
    case JCS_YCbCr:
    case JCS_RGB: info->channels = 3; d->out_color_space = JCS_RGB; break;
    default:
        cjpegs_set_error(ctx, "unsupported JPEG colour space (CMYK or YCCK); convert it to RGB");
        return 1;
    }
    return 0;
}

int cjpegs_read_info(const char *path, cjpegs_info *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    cjpegs_ctx *ctx = cjpegs_new(err, errlen);
    if (ctx == NULL) return 1;
    if (setjmp(ctx->jump)) {
        cjpegs_release(ctx);
        return 1;
    }
    int rc = cjpegs_open(path, ctx);
    if (rc == 0) rc = cjpegs_prepare(ctx, info);
    cjpegs_release(ctx);
    return rc;
}

int cjpegs_read(const char *path, size_t max_pixels, cjpegs_info *info, float **out, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    cjpegs_ctx *ctx = cjpegs_new(err, errlen);
    if (ctx == NULL) return 1;
    if (setjmp(ctx->jump)) {
        cjpegs_release(ctx);
        return 1;
    }
    if (cjpegs_open(path, ctx) != 0 || cjpegs_prepare(ctx, info) != 0) {
        cjpegs_release(ctx);
        return 1;
    }
    size_t width = info->width, height = info->height, channels = (size_t)info->channels;
    if (max_pixels > 0 && width * height > max_pixels) {
        char message[160];
        snprintf(message, sizeof message, "image is too large (%zux%zu pixels, limit %zu)", width, height, max_pixels);
        cjpegs_set_error(ctx, message);
        cjpegs_release(ctx);
        return 1;
    }
    jpeg_start_decompress(&ctx->dinfo);
    if ((size_t)ctx->dinfo.output_components != channels) {
        cjpegs_set_error(ctx, "unsupported JPEG sample layout");
        cjpegs_release(ctx);
        return 1;
    }
    ctx->row = malloc(width * channels);
    ctx->out = malloc(sizeof(float) * width * height * channels);
    if (ctx->row == NULL || ctx->out == NULL) {
        cjpegs_set_error(ctx, "out of memory");
        cjpegs_release(ctx);
        return 1;
    }
    float table[256];
    for (int v = 0; v < 256; v++) table[v] = (float)v / 255.0f;
    while (ctx->dinfo.output_scanline < ctx->dinfo.output_height) {
        size_t y = ctx->dinfo.output_scanline;
        JSAMPROW rows[1] = {ctx->row};
        jpeg_read_scanlines(&ctx->dinfo, rows, 1);
        float *dst = ctx->out + y * width * channels;
        for (size_t i = 0; i < width * channels; i++) dst[i] = table[ctx->row[i]];
    }
    jpeg_finish_decompress(&ctx->dinfo);
    *out = ctx->out;
    ctx->out = NULL; /* ownership moves to the caller */
    cjpegs_release(ctx);
    return 0;
}

void cjpegs_free(float *buffer) { free(buffer); }

int cjpegs_write(const char *path, const float *samples, uint32_t width, uint32_t height,
                 int channels, int quality, char *err, size_t errlen) {
    cjpegs_ctx *ctx = cjpegs_new(err, errlen);
    if (ctx == NULL) return 1;
    if ((channels != 1 && channels != 3) || width == 0 || height == 0 || quality < 1 || quality > 100) {
        cjpegs_set_error(ctx, "unsupported layout (need 1 or 3 channels, non-empty, quality 1-100)");
        cjpegs_release(ctx);
        return 1;
    }
    ctx->fp = fopen(path, "wb");
    if (ctx->fp == NULL) {
        char message[256];
        snprintf(message, sizeof message, "cannot create: %s", strerror(errno));
        cjpegs_set_error(ctx, message);
        cjpegs_release(ctx);
        return 1;
    }
    ctx->row = malloc((size_t)width * (size_t)channels);
    if (ctx->row == NULL) {
        cjpegs_set_error(ctx, "out of memory");
        cjpegs_release(ctx);
        return 1;
    }
    if (setjmp(ctx->jump)) {
        cjpegs_release(ctx);
        return 1;
    }
    ctx->cinfo.err = &ctx->pub;
    jpeg_create_compress(&ctx->cinfo);
    ctx->compress_ready = 1;
    jpeg_stdio_dest(&ctx->cinfo, ctx->fp);
    ctx->cinfo.image_width = width;
    ctx->cinfo.image_height = height;
    ctx->cinfo.input_components = channels;
    ctx->cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ctx->cinfo);
    jpeg_set_quality(&ctx->cinfo, quality, TRUE);
    jpeg_start_compress(&ctx->cinfo, TRUE);
    size_t per_row = (size_t)width * (size_t)channels;
    while (ctx->cinfo.next_scanline < height) {
        const float *src = samples + (size_t)ctx->cinfo.next_scanline * per_row;
        for (size_t i = 0; i < per_row; i++) {
            float v = src[i];
            v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* also maps NaN to 0 */
            ctx->row[i] = (unsigned char)(v * 255.0f + 0.5f);
        }
        JSAMPROW rows[1] = {ctx->row};
        jpeg_write_scanlines(&ctx->cinfo, rows, 1);
    }
    jpeg_finish_compress(&ctx->cinfo);
    FILE *fp = ctx->fp;
    ctx->fp = NULL;
    int failed = fflush(fp) != 0 || ferror(fp);
    if (fclose(fp) != 0) failed = 1;
    if (failed) {
        char message[256];
        snprintf(message, sizeof message, "write failed: %s", strerror(errno));
        cjpegs_set_error(ctx, message);
        cjpegs_release(ctx);
        return 1;
    }
    cjpegs_release(ctx);
    return 0;
}
