/* TIFF I/O over libtiff; see include/ctiffsupport.h for the why. */
#include "ctiffsupport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

typedef struct {
    char *err;
    size_t errlen;
    int has_error;
} ctiffs_errors;

static void ctiffs_set_error(ctiffs_errors *e, const char *message) {
    if (e->err != NULL && e->errlen > 0) snprintf(e->err, e->errlen, "%s", message);
    e->has_error = 1;
}

/* Keeps the first libtiff error: later ones are usually consequences of it. */
static int ctiffs_on_error(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    ctiffs_errors *e = user_data;
    if (e->has_error) return 1;
    char text[320];
    vsnprintf(text, sizeof text, fmt, ap);
    char full[400];
    snprintf(full, sizeof full, "cannot decode TIFF (libtiff %s: %s)", module ? module : "", text);
    ctiffs_set_error(e, full);
    return 1;
}

/* Warnings (unknown tags, odd but readable fields) are not the user's problem: ignore them. */
static int ctiffs_on_warning(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)user_data; (void)module; (void)fmt; (void)ap;
    return 1;
}

static TIFF *ctiffs_open(const char *path, const char *mode, ctiffs_errors *e) {
    if (mode[0] == 'r') {
        FILE *probe = fopen(path, "rb");
        if (probe == NULL) {
            char message[256];
            snprintf(message, sizeof message, "cannot open: %s", strerror(errno));
            ctiffs_set_error(e, message);
            return NULL;
        }
        int first = fgetc(probe);
        fclose(probe);
        if (first == EOF) {
            ctiffs_set_error(e, "file is empty");
            return NULL;
        }
    }
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (options == NULL) {
        ctiffs_set_error(e, "out of memory");
        return NULL;
    }
    TIFFOpenOptionsSetErrorHandlerExtR(options, ctiffs_on_error, e);
    TIFFOpenOptionsSetWarningHandlerExtR(options, ctiffs_on_warning, e);
    TIFF *tif = TIFFOpenExt(path, mode, options);
    TIFFOpenOptionsFree(options);
    if (tif == NULL && !e->has_error) ctiffs_set_error(e, mode[0] == 'r' ? "cannot open as TIFF" : "cannot create");
    return tif;
}

/* The header fields the decoder needs. */
typedef struct {
    uint32_t width, height;
    uint16_t spp, bps, photometric, planar, sample_format;
    int direct;     /* 1: read samples as stored; 0: through libtiff's RGBA interface */
    int has_alpha;
} ctiffs_header;

static int ctiffs_read_header(TIFF *tif, ctiffs_header *h, ctiffs_info *info, ctiffs_errors *e) {
    memset(h, 0, sizeof *h);
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &h->width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h->height)) {
        if (!e->has_error) ctiffs_set_error(e, "TIFF header has no image size");
        return 1;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &h->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &h->bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &h->planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &h->sample_format);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &h->photometric))
        h->photometric = h->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (h->width == 0 || h->height == 0) {
        ctiffs_set_error(e, "TIFF image is empty (0 pixels)");
        return 1;
    }
    if (h->sample_format != SAMPLEFORMAT_UINT) {
        ctiffs_set_error(e, "unsupported TIFF sample format (signed or floating-point samples); save as 8- or 16-bit unsigned");
        return 1;
    }
    int gray = h->photometric == PHOTOMETRIC_MINISBLACK || h->photometric == PHOTOMETRIC_MINISWHITE;
    int tiled = TIFFIsTiled(tif);
    if (!tiled && gray && h->spp <= 2 && (h->bps == 16 || (h->bps <= 8 && 8 % h->bps == 0) ) &&
        !(h->spp == 2 && h->bps < 8)) {
        h->direct = 1;
        info->channels = h->spp;
        info->bit_depth = h->bps == 16 ? 16 : 8;
    } else if (!tiled && h->photometric == PHOTOMETRIC_RGB && h->spp >= 3 && (h->bps == 8 || h->bps == 16)) {
        h->direct = 1;
        info->channels = h->spp >= 4 ? 4 : 3;
        info->bit_depth = h->bps;
    } else if (!tiled && h->photometric == PHOTOMETRIC_PALETTE && h->spp == 1 && (h->bps == 8 || h->bps == 4 || h->bps == 2 || h->bps == 1 || h->bps == 16)) {
        h->direct = 1;
        info->channels = 3;
        info->bit_depth = 16;   /* colormap entries are 16-bit; 8-bit maps are scaled up exactly */
    } else {
        char message[256];
        if (!TIFFRGBAImageOK(tif, message)) {
            char full[400];
            snprintf(full, sizeof full, "unsupported TIFF layout (libtiff: %s)", message);
            ctiffs_set_error(e, full);
            return 1;
        }
        uint16_t extra_count = 0, *extra = NULL;
        TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &extra_count, &extra);
        h->has_alpha = extra_count > 0;
        info->channels = h->has_alpha ? 4 : 3;
        info->bit_depth = 8;
    }
    info->width = h->width;
    info->height = h->height;
    return 0;
}

int ctiffs_read_info(const char *path, ctiffs_info *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    ctiffs_errors e = {err, errlen, 0};
    TIFF *tif = ctiffs_open(path, "r", &e);
    if (tif == NULL) return 1;
    ctiffs_header h;
    int rc = ctiffs_read_header(tif, &h, info, &e);
    TIFFClose(tif);
    return rc;
}

/* Sample `index` of a packed row of `bps`-bit samples (1, 2, 4, 8 or 16; 16-bit in native order). */
static unsigned ctiffs_sample(const unsigned char *row, size_t index, int bps) {
    if (bps == 8) return row[index];
    if (bps == 16) return ((const uint16_t *)(const void *)row)[index];
    size_t bit = index * (size_t)bps;
    unsigned byte = row[bit / 8];
    unsigned shift = 8 - (unsigned)bps - (unsigned)(bit % 8);
    return (byte >> shift) & ((1u << bps) - 1u);
}

static int ctiffs_read_direct(TIFF *tif, const ctiffs_header *h, const ctiffs_info *info, float *out, ctiffs_errors *e) {
    size_t width = h->width, channels = (size_t)info->channels;
    tmsize_t scanline = TIFFScanlineSize(tif);
    unsigned char *row = scanline > 0 ? malloc((size_t)scanline) : NULL;
    if (row == NULL) {
        if (!e->has_error) ctiffs_set_error(e, "out of memory");
        return 1;
    }
    uint16_t *red = NULL, *green = NULL, *blue = NULL;
    float palette_scale = 1.0f / 65535.0f;
    if (h->photometric == PHOTOMETRIC_PALETTE) {
        if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &red, &green, &blue)) {
            if (!e->has_error) ctiffs_set_error(e, "palette TIFF has no colour map");
            free(row);
            return 1;
        }
        /* Old writers store 8-bit values in the 16-bit map: then every entry is below 256. */
        size_t entries = (size_t)1 << h->bps;
        int eight = 1;
        for (size_t i = 0; i < entries; i++)
            if (red[i] > 255 || green[i] > 255 || blue[i] > 255) eight = 0;
        if (eight) palette_scale = 1.0f / 255.0f;
    }
    const float full = (float)((1u << (h->bps == 16 ? 16 : h->bps)) - 1u);
    int invert = h->photometric == PHOTOMETRIC_MINISWHITE;
    size_t planes = h->planar == PLANARCONFIG_SEPARATE ? h->spp : 1;
    size_t per_pixel = h->planar == PLANARCONFIG_SEPARATE ? 1 : h->spp;
    for (uint32_t y = 0; y < h->height; y++) {
        float *dst = out + (size_t)y * width * channels;
        for (size_t plane = 0; plane < planes; plane++) {
            if (TIFFReadScanline(tif, row, y, (uint16_t)plane) < 0) {
                if (!e->has_error) ctiffs_set_error(e, "file is truncated or corrupt (cannot read a scanline)");
                free(row);
                return 1;
            }
            for (size_t x = 0; x < width; x++) {
                if (red != NULL) {
                    unsigned index = ctiffs_sample(row, x, h->bps);
                    dst[x * 3] = (float)red[index] * palette_scale;
                    dst[x * 3 + 1] = (float)green[index] * palette_scale;
                    dst[x * 3 + 2] = (float)blue[index] * palette_scale;
                    continue;
                }
                size_t first = planes > 1 ? plane : 0, last = planes > 1 ? plane + 1 : channels;
                for (size_t c = first; c < last && c < channels; c++) {
                    float v = (float)ctiffs_sample(row, x * per_pixel + (planes > 1 ? 0 : c), h->bps) / full;
                    if (invert && c == 0) v = 1.0f - v;
                    dst[x * channels + c] = v;
                }
            }
        }
    }
    free(row);
    return 0;
}

static int ctiffs_read_rgba(TIFF *tif, const ctiffs_header *h, const ctiffs_info *info, float *out, ctiffs_errors *e) {
    size_t pixels = (size_t)h->width * h->height, channels = (size_t)info->channels;
    uint32_t *raster = malloc(sizeof(uint32_t) * pixels);
    if (raster == NULL) {
        ctiffs_set_error(e, "out of memory");
        return 1;
    }
    if (!TIFFReadRGBAImageOriented(tif, h->width, h->height, raster, ORIENTATION_TOPLEFT, 1)) {
        if (!e->has_error) ctiffs_set_error(e, "file is truncated or corrupt (cannot decode the image)");
        free(raster);
        return 1;
    }
    for (size_t p = 0; p < pixels; p++) {
        uint32_t v = raster[p];
        out[p * channels] = (float)TIFFGetR(v) / 255.0f;
        out[p * channels + 1] = (float)TIFFGetG(v) / 255.0f;
        out[p * channels + 2] = (float)TIFFGetB(v) / 255.0f;
        if (channels == 4) out[p * channels + 3] = (float)TIFFGetA(v) / 255.0f;
    }
    free(raster);
    return 0;
}

int ctiffs_read(const char *path, size_t max_pixels, ctiffs_info *info, float **out, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    ctiffs_errors e = {err, errlen, 0};
    TIFF *tif = ctiffs_open(path, "r", &e);
    if (tif == NULL) return 1;
    ctiffs_header h;
    if (ctiffs_read_header(tif, &h, info, &e) != 0) {
        TIFFClose(tif);
        return 1;
    }
    size_t width = h.width, height = h.height;
    if (max_pixels > 0 && width * height > max_pixels) {
        char message[160];
        snprintf(message, sizeof message, "image is too large (%zux%zu pixels, limit %zu)", width, height, max_pixels);
        ctiffs_set_error(&e, message);
        TIFFClose(tif);
        return 1;
    }
    float *pixels = malloc(sizeof(float) * width * height * (size_t)info->channels);
    if (pixels == NULL) {
        ctiffs_set_error(&e, "out of memory");
        TIFFClose(tif);
        return 1;
    }
    int rc = h.direct ? ctiffs_read_direct(tif, &h, info, pixels, &e) : ctiffs_read_rgba(tif, &h, info, pixels, &e);
    /* libtiff may report a decoding error through the handler yet return success for the row. */
    if (rc == 0 && e.has_error) rc = 1;
    TIFFClose(tif);
    if (rc != 0) {
        free(pixels);
        return 1;
    }
    *out = pixels;
    return 0;
}

void ctiffs_free(float *buffer) { free(buffer); }

int ctiffs_write(const char *path, const float *samples, uint32_t width, uint32_t height, int channels,
                 int bit_depth, int lzw, const uint16_t *colormap, char *err, size_t errlen) {
    ctiffs_errors e = {err, errlen, 0};
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || width == 0 || height == 0 ||
        (colormap != NULL && (channels != 1 || bit_depth != 8))) {
        ctiffs_set_error(&e, "unsupported layout (need 1-4 channels, 8 or 16 bits, non-empty; palette: 1 channel, 8 bits)");
        return 1;
    }
    TIFF *tif = ctiffs_open(path, "w", &e);
    if (tif == NULL) return 1;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)channels);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)bit_depth);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, lzw ? COMPRESSION_LZW : COMPRESSION_NONE);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif, 0));
    if (colormap != NULL) {
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_PALETTE);
        TIFFSetField(tif, TIFFTAG_COLORMAP, colormap, colormap + 256, colormap + 512);
    } else {
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, channels >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    }
    if (channels == 2 || channels == 4) {
        uint16_t extra[1] = {EXTRASAMPLE_UNASSALPHA};
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
    }
    size_t per_row = (size_t)width * (size_t)channels;
    unsigned char *row = malloc(per_row * (size_t)(bit_depth / 8));
    if (row == NULL) {
        ctiffs_set_error(&e, "out of memory");
        TIFFClose(tif);
        return 1;
    }
    const float scale = bit_depth == 8 ? 255.0f : 65535.0f;
    for (uint32_t y = 0; y < height && !e.has_error; y++) {
        const float *src = samples + (size_t)y * per_row;
        for (size_t i = 0; i < per_row; i++) {
            float v = src[i];
            v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* also maps NaN to 0 */
            unsigned level = (unsigned)(v * scale + 0.5f);
            if (bit_depth == 8) row[i] = (unsigned char)level;
            else ((uint16_t *)(void *)row)[i] = (uint16_t)level;
        }
        if (TIFFWriteScanline(tif, row, y, 0) < 0 && !e.has_error) ctiffs_set_error(&e, "cannot write a scanline");
    }
    free(row);
    TIFFClose(tif);
    return e.has_error ? 1 : 0;
}
