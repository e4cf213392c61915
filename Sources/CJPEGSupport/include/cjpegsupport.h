#ifndef CJPEGSUPPORT_H
#define CJPEGSUPPORT_H
/*
 * JPEG reading and writing over libjpeg-turbo. libjpeg reports errors by longjmp from its error
 * manager, which Swift cannot catch, so all of it lives here and every failure comes back as a
 * return code plus a one-line message in a caller-provided buffer. Corrupt-data warnings (a
 * truncated file, a bad Huffman code) are errors too: libjpeg would otherwise fill the rest of the
 * image with gray and carry on, and a silently damaged training image is worse than a clear stop.
 */
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;   /* 1 gray, 3 RGB (YCbCr is converted) */
    int bit_depth;  /* always 8 */
} cjpegs_info;

/* Reads the header only. Returns 0, or non-zero with a one-line reason in err. */
int cjpegs_read_info(const char *path, cjpegs_info *info, char *err, size_t errlen);

/* Decodes into *out: height*width*channels floats (HWC), each sample / 255; free with cjpegs_free.
 * max_pixels bounds width*height (0: no bound). Returns 0, or non-zero with *out NULL and err set. */
int cjpegs_read(const char *path, size_t max_pixels, cjpegs_info *info, float **out, char *err, size_t errlen);

void cjpegs_free(float *buffer);

/* Writes height*width*channels floats (HWC, 1 gray or 3 RGB, clamped to [0,1]) as a baseline JPEG
 * of the given quality (1-100). Writes `path` directly. Returns 0, or non-zero with err set. */
int cjpegs_write(const char *path, const float *samples, uint32_t width, uint32_t height,
                 int channels, int quality, char *err, size_t errlen);
#endif
