#ifndef CPNGSUPPORT_H
#define CPNGSUPPORT_H
/*
 * Raw-sample PNG reading and writing over libpng's classic API.
 *
 * Why not the simplified API: with PNG_FORMAT_FLAG_LINEAR it converts sRGB <-> linear light, which
 * changes the stored values; ranksweep wants the samples exactly as stored (value / 255 or / 65535).
 * The classic API reports errors by longjmp, which Swift cannot catch, so all of it lives here and
 * every failure comes back as a return code plus a message in a caller-provided buffer.
 */
#include <stddef.h>
#include <stdint.h>

/* What a PNG holds, after expansion: palette -> RGB (RGBA with tRNS), gray 1/2/4-bit -> 8-bit. */
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;           /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bit_depth;          /* 8 or 16: the depth the samples were scaled from */
    int stored_bit_depth;   /* the file's own depth: 1, 2, 4, 8 or 16 */
    int color_type;         /* the file's PNG colour type (0 gray, 2 RGB, 3 palette, 4 GA, 6 RGBA) */
} cpngs_info;

/*
 * Reads the header only (fast: for validation and sizes). Returns 0 on success; otherwise non-zero
 * with a one-line reason in err (NUL-terminated, at most errlen bytes).
 */
int cpngs_read_info(const char *path, cpngs_info *info, char *err, size_t errlen);

/*
 * Decodes the whole file into *out: height*width*channels floats, row-major HWC, each the stored
 * sample divided by 255 (8-bit) or 65535 (16-bit). The buffer is malloc'd; free it with cpngs_free.
 * max_pixels bounds width*height (0: no bound) so a hostile header cannot ask for gigabytes.
 * Returns 0 on success; otherwise non-zero, *out NULL, and a one-line reason in err.
 */
int cpngs_read(const char *path, size_t max_pixels, cpngs_info *info, float **out, char *err, size_t errlen);

void cpngs_free(float *buffer);

/*
 * Writes height*width*channels floats (HWC, clamped to [0,1], rounded to the nearest level) as an
 * 8- or 16-bit PNG with 1-4 channels (gray, gray+alpha, RGB, RGBA). Writes `path` directly: the
 * caller makes it atomic by writing a temporary name and renaming. Returns 0 or non-zero + err.
 */
int cpngs_write(const char *path, const float *samples, uint32_t width, uint32_t height,
                int channels, int bit_depth, char *err, size_t errlen);
#endif
