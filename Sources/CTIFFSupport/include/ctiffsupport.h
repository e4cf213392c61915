#ifndef CTIFFSUPPORT_H
#define CTIFFSUPPORT_H
/*
 * TIFF reading and writing over libtiff. libtiff reports problems through handler callbacks; the
 * per-file handlers of TIFFOpenExt (libtiff >= 4.5) put the first message into a caller-provided
 * buffer, so concurrent decodes never share state and every failure comes back as a return code
 * plus a one-line message.
 *
 * Read exactly as stored (value / 255 or / 65535): 1/2/4/8-bit gray (min-is-black or
 * min-is-white), 16-bit gray, 8/16-bit RGB, each with an optional extra (alpha) sample, contiguous
 * or planar, and palette images (expanded to RGB). Anything else libtiff can render (tiled,
 * YCbCr/JPEG-compressed, CMYK...) is read through its 8-bit RGBA interface. Only the first page.
 */
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;   /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bit_depth;  /* 8 or 16: the full scale the samples were divided by */
} ctiffs_info;

/* Reads the header only. Returns 0, or non-zero with a one-line reason in err. */
int ctiffs_read_info(const char *path, ctiffs_info *info, char *err, size_t errlen);

/* Decodes the first page into *out: height*width*channels floats (HWC); free with ctiffs_free.
 * max_pixels bounds width*height (0: no bound). Returns 0, or non-zero with *out NULL and err set. */
int ctiffs_read(const char *path, size_t max_pixels, ctiffs_info *info, float **out, char *err, size_t errlen);

void ctiffs_free(float *buffer);

/* Writes height*width*channels floats (HWC, clamped to [0,1], rounded) as an 8- or 16-bit TIFF with
 * 1-4 channels (gray, gray+alpha, RGB, RGBA), LZW-compressed when `lzw` is non-zero. With a
 * `colormap` (3 x 256 16-bit entries: reds, greens, blues) it writes an 8-bit palette image whose
 * indices are the single channel's samples x 255. Writes `path` directly. Returns 0 or non-zero + err. */
int ctiffs_write(const char *path, const float *samples, uint32_t width, uint32_t height, int channels,
                 int bit_depth, int lzw, const uint16_t *colormap, char *err, size_t errlen);
#endif
