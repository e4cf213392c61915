#include <png.h>

/* Function-like macros and composed constants that Swift does not import (see INTEROP.md). */
static inline png_uint_32 cpng_format_rgba(void) { return PNG_FORMAT_RGBA; }
static inline png_uint_32 cpng_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline png_uint_32 cpng_format_gray(void) { return PNG_FORMAT_GRAY; }
static inline png_uint_32 cpng_format_linear_y(void) { return PNG_FORMAT_LINEAR_Y; }
static inline png_uint_32 cpng_format_linear_rgb(void) { return PNG_FORMAT_LINEAR_RGB; }
static inline size_t cpng_image_size(png_image *image) { return PNG_IMAGE_SIZE(*image); }
static inline int cpng_image_failed(png_image *image) { return PNG_IMAGE_FAILED(*image); }
