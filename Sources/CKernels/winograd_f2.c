#include "ckernels.h"
#include "winograd_vectors.h"

/* Winograd F(2x2, 3x3): 4x4 input tiles, 2x2 output tiles (Lavin and Gray's matrices): the input,
   output, kernel, output-gradient and kernel-gradient transforms of `Winograd` (the products
   between them are GEMMs), and the rotated, channel-swapped kernel of an input gradient. Nothing is contracted into fused multiply-adds, so every
   instruction-set clone gives the same bits. */
#pragma clang fp contract(off)

#define INPUT_TRANSFORM(T, LOAD, STORE)                                                          \
    do {                                                                                         \
        T d00 = LOAD(d[0] + ch), d01 = LOAD(d[1] + ch), d02 = LOAD(d[2] + ch), d03 = LOAD(d[3] + ch);     \
        T d10 = LOAD(d[4] + ch), d11 = LOAD(d[5] + ch), d12 = LOAD(d[6] + ch), d13 = LOAD(d[7] + ch);     \
        T d20 = LOAD(d[8] + ch), d21 = LOAD(d[9] + ch), d22 = LOAD(d[10] + ch), d23 = LOAD(d[11] + ch);   \
        T d30 = LOAD(d[12] + ch), d31 = LOAD(d[13] + ch), d32 = LOAD(d[14] + ch), d33 = LOAD(d[15] + ch); \
        /* Rows: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3. */                       \
        T t[4][4] = {{d00 - d20, d01 - d21, d02 - d22, d03 - d23},                               \
                     {d10 + d20, d11 + d21, d12 + d22, d13 + d23},                               \
                     {d20 - d10, d21 - d11, d22 - d12, d23 - d13},                               \
                     {d10 - d30, d11 - d31, d12 - d32, d13 - d33}};                              \
        /* Columns, the same on each row. */                                                     \
        for (int r = 0; r < 4; r++) {                                                            \
            STORE(out + (r * 4) * stride + ch, t[r][0] - t[r][2]);                               \
            STORE(out + (r * 4 + 1) * stride + ch, t[r][1] + t[r][2]);                           \
            STORE(out + (r * 4 + 2) * stride + ch, t[r][2] - t[r][1]);                           \
            STORE(out + (r * 4 + 3) * stride + ch, t[r][1] - t[r][3]);                           \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_winograd_input_tile(const float *const d[16], long c, float *out, long stride) {
    long ch = 0;
    for (; ch + 16 <= c; ch += 16) INPUT_TRANSFORM(v16, load16, store16);
    for (; ch + 8 <= c; ch += 8) INPUT_TRANSFORM(v8, load8, store8);
    for (; ch < c; ch++) INPUT_TRANSFORM(float, LOAD1, STORE1);
}

#define OUTPUT_TRANSFORM(T, LOAD, STORE, ZERO, BIAS, MAX0)                                       \
    do {                                                                                         \
        T a[16];                                                                                 \
        for (int k = 0; k < 16; k++) a[k] = LOAD(m + k * stride + ch);                           \
        /* Rows: o0 = m0 + m1 + m2, o1 = m1 - m2 - m3; then the same on the columns. */          \
        T o0[4], o1[4];                                                                          \
        for (int j = 0; j < 4; j++) {                                                            \
            o0[j] = a[j] + a[4 + j] + a[8 + j];                                                  \
            o1[j] = a[4 + j] - a[8 + j] - a[12 + j];                                             \
        }                                                                                        \
        T b = bias ? BIAS : ZERO;                                                                \
        T v[4] = {o0[0] + o0[1] + o0[2] + b, o0[1] - o0[2] - o0[3] + b,                          \
                  o1[0] + o1[1] + o1[2] + b, o1[1] - o1[2] - o1[3] + b};                         \
        for (int i = 0; i < 4; i++) {                                                            \
            if (!y[i]) continue;                                                                 \
            STORE(y[i] + ch, relu ? MAX0(v[i]) : v[i]);                                          \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_winograd_output_tile(const float *m, long stride, long c, const float *bias, int relu, float *const y[4]) {
    long ch = 0;
    v8 zero8 = {0};
    v16 zero16 = {0};
    for (; ch + 16 <= c; ch += 16) OUTPUT_TRANSFORM(v16, load16, store16, zero16, load16(bias + ch), max0_16);
    for (; ch + 8 <= c; ch += 8) OUTPUT_TRANSFORM(v8, load8, store8, zero8, load8(bias + ch), max0_8);
    for (; ch < c; ch++) OUTPUT_TRANSFORM(float, LOAD1, STORE1, 0.0f, bias[ch], max0_1);
}

/* G g Gᵀ for one 3x3 kernel g (g[k] for k = ky*3 + kx), vectorised over the output index b.
   G g: rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 (on each column), then the same on the rows of the
   result; each of the 16 values multiplied by the column's scale. */
#define KERNEL_TRANSFORM(T, LOAD, STORE, SCALE)                                                  \
    do {                                                                                         \
        T g[9];                                                                                  \
        for (int k = 0; k < 9; k++) g[k] = LOAD(src + k * plane + b);                            \
        T rows[12];                                                                              \
        for (int kx = 0; kx < 3; kx++) {                                                         \
            T g0 = g[kx], g1 = g[3 + kx], g2 = g[6 + kx];                                        \
            rows[kx] = g0;                                                                       \
            rows[3 + kx] = half * (g0 + g1 + g2);                                                \
            rows[6 + kx] = half * (g0 - g1 + g2);                                                \
            rows[9 + kx] = g2;                                                                   \
        }                                                                                        \
        T s = SCALE;                                                                             \
        for (int i = 0; i < 4; i++) {                                                            \
            T r0 = rows[i * 3], r1 = rows[i * 3 + 1], r2 = rows[i * 3 + 2];                      \
            STORE(u + (i * 4) * plane + a * outputs + b, s * r0);                                \
            STORE(u + (i * 4 + 1) * plane + a * outputs + b, s * (half * (r0 + r1 + r2)));       \
            STORE(u + (i * 4 + 2) * plane + a * outputs + b, s * (half * (r0 - r1 + r2)));       \
            STORE(u + (i * 4 + 3) * plane + a * outputs + b, s * r2);                            \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx2", "default")))
void ckernels_winograd_kernel(const float *kernel, long inputs, long outputs, const float *scale, float *u, long first,
                              long last) {
    const long plane = inputs * outputs;
    for (long a = first; a < last; a++) {
        const float *src = kernel + a * outputs;
        long b = 0;
        {
            const v8 half = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
            const v8 one = {1, 1, 1, 1, 1, 1, 1, 1};
            for (; b + 8 <= outputs; b += 8) KERNEL_TRANSFORM(v8, load8, store8, scale ? load8(scale + b) : one);
        }
        const float half = 0.5f;
        for (; b < outputs; b++) KERNEL_TRANSFORM(float, LOAD1, STORE1, scale ? scale[b] : 1.0f);
    }
}

void ckernels_rotate_swap_3x3(const float *kernel, long cin, long cout, float *out, long first, long last) {
    for (long k = first; k < last; k++) {
        const float *src = kernel + (8 - k) * cin * cout;
        float *dst = out + k * cin * cout;
        /* Blocks of 8x8 keep both sides' cache lines in use. */
        for (long co0 = 0; co0 < cout; co0 += 8)
            for (long ci0 = 0; ci0 < cin; ci0 += 8)
                for (long co = co0; co < co0 + 8 && co < cout; co++)
                    for (long ci = ci0; ci < ci0 + 8 && ci < cin; ci++) dst[co * cin + ci] = src[ci * cout + co];
    }
}

/* dM = A dY A^T of one tile's 2x2 output gradient (A^T = [[1,1,1,0],[0,1,-1,-1]]): each pair
   (p0, p1) lifts to (p0, p0 + p1, p0 - p1, -p1), first along rows, then along columns. */
#define OUTPUT_GRADIENT_TRANSFORM(T, LOAD, STORE)                                                \
    do {                                                                                         \
        T p00 = LOAD(dy[0] + ch), p01 = LOAD(dy[1] + ch), p10 = LOAD(dy[2] + ch), p11 = LOAD(dy[3] + ch); \
        /* Rows of the 4x2 A dY. */                                                              \
        T r[4][2] = {{p00, p01}, {p00 + p10, p01 + p11}, {p00 - p10, p01 - p11}, {-p10, -p11}}; \
        for (int i = 0; i < 4; i++) {                                                            \
            STORE(out + (i * 4) * stride + ch, r[i][0]);                                         \
            STORE(out + (i * 4 + 1) * stride + ch, r[i][0] + r[i][1]);                           \
            STORE(out + (i * 4 + 2) * stride + ch, r[i][0] - r[i][1]);                           \
            STORE(out + (i * 4 + 3) * stride + ch, -r[i][1]);                                    \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_winograd_output_gradient_tile(const float *const dy[4], long c, float *out, long stride) {
    long ch = 0;
    for (; ch + 16 <= c; ch += 16) OUTPUT_GRADIENT_TRANSFORM(v16, load16, store16);
    for (; ch + 8 <= c; ch += 8) OUTPUT_GRADIENT_TRANSFORM(v8, load8, store8);
    for (; ch < c; ch++) OUTPUT_GRADIENT_TRANSFORM(float, LOAD1, STORE1);
}

/* dW += G^T dU G for one input channel (G rows [1,0,0], [.5,.5,.5], [.5,-.5,.5], [0,0,1]): each
   4-vector (u0..u3) folds to (u0 + .5u1 + .5u2, .5u1 - .5u2, .5u1 + .5u2 + u3), first along
   columns (kx), then along rows (ky). */
#define KERNEL_GRADIENT_TRANSFORM(T, LOAD, STORE, HALF)                                          \
    do {                                                                                         \
        T r[4][3];                                                                               \
        for (int i = 0; i < 4; i++) {                                                            \
            T u0 = LOAD(du + (i * 4) * stride + ch), u1 = LOAD(du + (i * 4 + 1) * stride + ch);   \
            T u2 = LOAD(du + (i * 4 + 2) * stride + ch), u3 = LOAD(du + (i * 4 + 3) * stride + ch); \
            T s = HALF * (u1 + u2), d = HALF * (u1 - u2);                                        \
            r[i][0] = u0 + s; r[i][1] = d; r[i][2] = s + u3;                                     \
        }                                                                                        \
        for (int kx = 0; kx < 3; kx++) {                                                         \
            T s = HALF * (r[1][kx] + r[2][kx]), d = HALF * (r[1][kx] - r[2][kx]);                \
            T g[3] = {r[0][kx] + s, d, s + r[3][kx]};                                            \
            for (int ky = 0; ky < 3; ky++) {                                                     \
                float *p = dw + (ky * 3 + kx) * stride + ch;                                     \
                STORE(p, LOAD(p) + g[ky]);                                                       \
            }                                                                                    \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx2", "default")))
void ckernels_winograd_kernel_gradient(const float *du, long cin, long cout, float *dw, long first, long last) {
    long stride = cin * cout;
    v8 half8 = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    du += first * cout;
    dw += first * cout;
    for (long ci = first; ci < last; ci++, du += cout, dw += cout) {
        long ch = 0;
        for (; ch + 8 <= cout; ch += 8) KERNEL_GRADIENT_TRANSFORM(v8, load8, store8, half8);
        for (; ch < cout; ch++) KERNEL_GRADIENT_TRANSFORM(float, LOAD1, STORE1, 0.5f);
    }
}
