#include "ckernels.h"
#include <string.h>

/* Sixteen floats, unaligned: one zmm with AVX-512, split by the compiler into two ymm (AVX2) or
   four xmm (plain) otherwise. */
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int i16 __attribute__((vector_size(64), aligned(4)));
#define load16(p) (*(const v16 *)(p))
#define store16(p, v) (*(v16 *)(p) = (v))
/* Lanes below zero cleared (NaN kept). */
#define max0_16(v) ((v16)((i16)(v) & ~((v) < zero)))

/* Register blocks per ISA: AVX-512 has 32 zmm (16 pixel accumulators, or 24 tile rows, plus the
   operands); AVX2 16 ymm (a v16 takes two); plain SSE 16 xmm (a v16 takes four). */
#define ISA_NAME(x) x##_avx512
#define ISA_TARGET __attribute__((target("avx512f,fma")))
#define PIXELS 16
#define TILE_BIG 24
#define TILE_MID 8
#define TILE_SMALL 2
#define ALL_TAPS_TILE 27
#include "direct_conv_isa.h"
#undef ISA_NAME
#undef ISA_TARGET
#undef PIXELS
#undef TILE_BIG
#undef TILE_MID
#undef TILE_SMALL
#undef ALL_TAPS_TILE

#define ISA_NAME(x) x##_avx2
#define ISA_TARGET __attribute__((target("avx2,fma")))
#define PIXELS 6
#define TILE_BIG 6
#define TILE_MID 3
#define TILE_SMALL 1
#define ALL_TAPS_TILE 0
#include "direct_conv_isa.h"
#undef ISA_NAME
#undef ISA_TARGET
#undef PIXELS
#undef TILE_BIG
#undef TILE_MID
#undef TILE_SMALL
#undef ALL_TAPS_TILE

#define ISA_NAME(x) x##_plain
#define ISA_TARGET
#define PIXELS 3
#define TILE_BIG 3
#define TILE_MID 2
#define TILE_SMALL 1
#define ALL_TAPS_TILE 0
#include "direct_conv_isa.h"

int ckernels_direct_isa_supported(int isa) {
    __builtin_cpu_init();
    switch (isa) {
    case CKERNELS_ISA_PLAIN: return 1;
    case CKERNELS_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CKERNELS_ISA_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    default: return 0;
    }
}

/* A padded row holds a zero pixel, the row's w pixels, and zeros for the register blocks that run
   past the row's end (up to 16 pixels) and the gradient tiles that read past its last tap (up to
   24 floats); its padding is zeroed once per call and never overwritten. A fourth row of zeros stands for rows beyond the image in the filter gradient. */
long ckernels_direct_scratch_floats(long w, long channels) { return 4 * ((w + 18) * channels + 32); }

/* rows[ky] = source row `row + ky - 1` of its image, padded, or NULL beyond the image. Global
   source row g lives in buffer g % 3 (three consecutive rows never share one), so going down an
   image copies one new row per output row; held[b] is the row buffer b holds (-1: none). */
static void padded_rows(const float *source, long h, long w, long c, long row, float *scratch, long held[3],
                        const float *rows[3]) {
    const long length = (w + 18) * c + 32;
    const long y = row % h, image = row - y;
    for (int ky = 0; ky < 3; ky++) {
        const long sy = y + ky - 1;
        if (sy < 0 || sy >= h) { rows[ky] = NULL; continue; }
        const long g = image + sy;
        float *buffer = scratch + (g % 3) * length;
        if (held[g % 3] != g) {
            memcpy(buffer + c, source + g * w * c, (size_t)(w * c) * sizeof(float));
            held[g % 3] = g;
        }
        rows[ky] = buffer;
    }
}

static void zero_padding(float *scratch, long w, long c) {
    const long length = (w + 18) * c + 32;
    memset(scratch + 3 * length, 0, (size_t)length * sizeof(float));
    for (int ky = 0; ky < 3; ky++) {
        float *buffer = scratch + ky * length;
        memset(buffer, 0, (size_t)c * sizeof(float));
        memset(buffer + (w + 1) * c, 0, (size_t)(length - (w + 1) * c) * sizeof(float));
    }
}

void ckernels_direct_conv3x3(int isa, const float *source, long h, long w, long cs, const float *kernel, long ct,
                             const float *bias, int relu, float *target, long row0, long row1, float *scratch) {
    zero_padding(scratch, w, cs);
    long held[3] = {-1, -1, -1};
    for (long row = row0; row < row1; row++) {
        const float *rows[3];
        padded_rows(source, h, w, cs, row, scratch, held, rows);
        float *y = target + row * w * ct;
        switch (isa) {
        case CKERNELS_ISA_AVX512: forward_row_avx512(rows, w, cs, kernel, ct, bias, relu, y); break;
        case CKERNELS_ISA_AVX2: forward_row_avx2(rows, w, cs, kernel, ct, bias, relu, y); break;
        default: forward_row_plain(rows, w, cs, kernel, ct, bias, relu, y); break;
        }
    }
}

void ckernels_direct_conv3x3_filter_gradient(int isa, const float *source, const float *gradient, long h, long w,
                                             long cin, long cout, long row0, long row1, float *partial,
                                             float *scratch) {
    zero_padding(scratch, w, cin);
    const float *zero_row = scratch + 3 * ((w + 18) * cin + 32);
    long held[3] = {-1, -1, -1};
    for (long row = row0; row < row1; row++) {
        const float *rows[3];
        /* Output row y takes source rows y - 1, y, y + 1 through tap rows 0, 1, 2. */
        padded_rows(source, h, w, cin, row, scratch, held, rows);
        const float *dy = gradient + row * w * cout;
        switch (isa) {
        case CKERNELS_ISA_AVX512: filter_row_avx512(rows, zero_row, dy, w, cin, cout, partial); break;
        case CKERNELS_ISA_AVX2: filter_row_avx2(rows, zero_row, dy, w, cin, cout, partial); break;
        default: filter_row_plain(rows, zero_row, dy, w, cin, cout, partial); break;
        }
    }
}
