/* One instruction set's direct 3x3 convolution micro-kernels, included once per ISA by
   direct_conv.c with ISA_NAME(x) (a suffix), ISA_TARGET (a function attribute), PIXELS (output
   pixels per forward register block), the filter-gradient tile heights TILE_BIG > TILE_MID >
   TILE_SMALL (rows of the (kx, ci) x 16 tile kept in registers) and ALL_TAPS_TILE (the most rows
   of a tile spanning all nine taps, for 1-3 input channels; 0: none). Each block holds PIXELS or TILE_*
   vectors of 16 floats: one zmm each with AVX-512, two ymm with AVX2, four xmm in plain C. */

/* One output row: y[x, co] = bias[co] + sum over ky, (kx, ci) of rows[ky][(x + kx) * cs + ci] *
   kernel[ky, kx, ci, co], in that order (ky, then kx, then ci), for every co block of 16.
   rows[ky] is the padded source row y + ky - 1 (NULL beyond the image). */
ISA_TARGET static inline __attribute__((always_inline)) void ISA_NAME(forward_row_body)(
    const float *const rows[3], long w, const long cs, const float *kernel, long ct, const float *bias, int relu, float *y) {
    const long taps = 3 * cs;
    const v16 zero = {0};
    for (long co0 = 0; co0 < ct; co0 += 16) {
        const v16 start = bias ? load16(bias + co0) : zero;
        for (long x0 = 0; x0 < w; x0 += PIXELS) {
            v16 acc[PIXELS];
#pragma clang loop unroll(full)
            for (int p = 0; p < PIXELS; p++) acc[p] = start;
            for (int ky = 0; ky < 3; ky++) {
                if (!rows[ky]) continue;
                const float *in = rows[ky] + x0 * cs;
                const float *wk = kernel + ky * taps * ct + co0;
                for (long j = 0; j < taps; j++) {
                    const v16 wv = load16(wk + j * ct);
#pragma clang loop unroll(full)
                    for (int p = 0; p < PIXELS; p++) acc[p] += in[p * cs + j] * wv;
                }
            }
            const long valid = w - x0 < PIXELS ? w - x0 : PIXELS;
            float *out = y + x0 * ct + co0;
#pragma clang loop unroll(full)
            for (int p = 0; p < PIXELS; p++) {
                if (p < valid) store16(out + p * ct, relu ? max0_16(acc[p]) : acc[p]);
            }
        }
    }
}

/* The U-Nets' channel counts as constants: with 1 or 3 input channels (a first layer) the tap loop
   is short and unrolls; with 16 or 32 each pixel's offset folds into the load's displacement. */
ISA_TARGET static void ISA_NAME(forward_row)(const float *const rows[3], long w, long cs, const float *kernel,
                                             long ct, const float *bias, int relu, float *y) {
    if (cs == 1) ISA_NAME(forward_row_body)(rows, w, 1, kernel, ct, bias, relu, y);
    else if (cs == 3) ISA_NAME(forward_row_body)(rows, w, 3, kernel, ct, bias, relu, y);
    else if (cs == 16) ISA_NAME(forward_row_body)(rows, w, 16, kernel, ct, bias, relu, y);
    else if (cs == 32) ISA_NAME(forward_row_body)(rows, w, 32, kernel, ct, bias, relu, y);
    else ISA_NAME(forward_row_body)(rows, w, cs, kernel, ct, bias, relu, y);
}

/* tile[r, co0..co0+16] += sum over x of row[x * cin + j0 + r] * dy[x, co0..]: TILE rows of dW
   for one source row and tap row, `valid` of them real (the rest read padding and are dropped). */
#define FILTER_TILE(TILE)                                                                              \
    ISA_TARGET static void ISA_NAME(filter_tile_##TILE)(const float *row, const float *dy, long w, long cin, \
                                                        long cout, long valid, float *tile) {         \
        const v16 zero = {0};                                                                          \
        v16 acc[TILE];                                                                                 \
        _Pragma("clang loop unroll(full)")                                                             \
        for (int r = 0; r < TILE; r++) acc[r] = r < valid ? load16(tile + r * cout) : zero;            \
        for (long x = 0; x < w; x++) {                                                                 \
            const v16 d = load16(dy + x * cout);                                                       \
            const float *in = row + x * cin;                                                           \
            _Pragma("clang loop unroll(full)")                                                         \
            for (int r = 0; r < TILE; r++) acc[r] += in[r] * d;                                        \
        }                                                                                              \
        _Pragma("clang loop unroll(full)")                                                             \
        for (int r = 0; r < TILE; r++) if (r < valid) store16(tile + r * cout, acc[r]);                \
    }
FILTER_TILE(TILE_BIG)
FILTER_TILE(TILE_MID)
FILTER_TILE(TILE_SMALL)
#undef FILTER_TILE

/* partial[ky, kx, ci, co] += sum over x of rows[ky][(x + kx) * cin + ci] * dy[x, co] for one
   output row; tiles of TILE_BIG rows, the rest in TILE_MID then TILE_SMALL ones, always in the same
   order for a given shape. */
#if ALL_TAPS_TILE
/* With few input channels (9 * cin <= ALL_TAPS_TILE) all of dW's rows for 16 output channels fit
   in registers: one pass over the row's pixels (rows[ky] never NULL here: a zero row instead). */
ISA_TARGET static inline __attribute__((always_inline)) void ISA_NAME(filter_all_taps_body)(
    const float *const rows[3], const float *dy, long w, const long cin, long cout, float *partial) {
    const long taps = 3 * cin;
    for (long co0 = 0; co0 < cout; co0 += 16) {
        v16 acc[ALL_TAPS_TILE];
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < 9 * cin; r++) acc[r] = load16(partial + r * cout + co0);
        for (long x = 0; x < w; x++) {
            const v16 d = load16(dy + x * cout + co0);
            _Pragma("clang loop unroll(full)")
            for (int ky = 0; ky < 3; ky++) {
                const float *in = rows[ky] + x * cin;
                _Pragma("clang loop unroll(full)")
                for (int t = 0; t < taps; t++) acc[ky * taps + t] += in[t] * d;
            }
        }
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < 9 * cin; r++) store16(partial + r * cout + co0, acc[r]);
    }
}
#endif

/* bias[co] += sum over x of dy[x, co], 16 channels at a time. */
ISA_TARGET static void ISA_NAME(bias_row)(const float *dy, long w, long cout, float *bias) {
    for (long co0 = 0; co0 < cout; co0 += 16) {
        v16 acc = load16(bias + co0);
        for (long x = 0; x < w; x++) acc += load16(dy + x * cout + co0);
        store16(bias + co0, acc);
    }
}

ISA_TARGET static void ISA_NAME(filter_row)(const float *const given[3], const float *zero_row, const float *dy, long w,
                                            long cin, long cout, float *partial) {
    ISA_NAME(bias_row)(dy, w, cout, partial + 9 * cin * cout);
#if ALL_TAPS_TILE
    if (9 * cin <= ALL_TAPS_TILE) {
        const float *rows[3];
        for (int ky = 0; ky < 3; ky++) rows[ky] = given[ky] ? given[ky] : zero_row;
        if (cin == 1) ISA_NAME(filter_all_taps_body)(rows, dy, w, 1, cout, partial);
        else if (cin == 2) ISA_NAME(filter_all_taps_body)(rows, dy, w, 2, cout, partial);
        else ISA_NAME(filter_all_taps_body)(rows, dy, w, 3, cout, partial);
        return;
    }
#endif
    const float *const *rows = given;
    const long taps = 3 * cin;
    for (int ky = 0; ky < 3; ky++) {
        if (!rows[ky]) continue;
        for (long co0 = 0; co0 < cout; co0 += 16) {
            long j0 = 0;
            float *tile = partial + ky * taps * cout + co0;
            for (; j0 + TILE_BIG <= taps; j0 += TILE_BIG)
                ISA_NAME(filter_tile_TILE_BIG)(rows[ky] + j0, dy + co0, w, cin, cout, TILE_BIG, tile + j0 * cout);
            for (; j0 + TILE_MID <= taps; j0 += TILE_MID)
                ISA_NAME(filter_tile_TILE_MID)(rows[ky] + j0, dy + co0, w, cin, cout, TILE_MID, tile + j0 * cout);
            for (; j0 < taps; j0 += TILE_SMALL) {
                const long valid = taps - j0 < TILE_SMALL ? taps - j0 : TILE_SMALL;
                ISA_NAME(filter_tile_TILE_SMALL)(rows[ky] + j0, dy + co0, w, cin, cout, valid, tile + j0 * cout);
            }
        }
    }
}
