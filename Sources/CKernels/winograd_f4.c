#include "ckernels.h"
#include "winograd_vectors.h"

/* Winograd F(4x4, 3x3): 6x6 input tiles, 4x4 output tiles, interpolation points 0, ±1, ±2, ∞
   (Lavin and Gray's matrices). Multiply-adds written out, no FMA contraction, so that every
   instruction-set clone gives the same bits. */
#pragma clang fp contract(off)

/* Sixteen copies of x, for the avx512f-width constants. */
#define V16(x) {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}

/* Bᵀ applied to six values along one axis. */
#define BT6(T, d, r)                                                                             \
    do {                                                                                         \
        r[0] = four * d[0] - five * d[2] + d[4];                                                 \
        r[1] = d[3] + d[4] - four * (d[1] + d[2]);                                               \
        r[2] = four * (d[1] - d[2]) + d[4] - d[3];                                               \
        r[3] = two * (d[3] - d[1]) + d[4] - d[2];                                                \
        r[4] = two * (d[1] - d[3]) + d[4] - d[2];                                                \
        r[5] = four * d[1] - five * d[3] + d[5];                                                 \
    } while (0)

#define INPUT_TRANSFORM_F4(T, LOAD, STORE)                                                       \
    do {                                                                                         \
        T t[6][6];                                                                               \
        for (int j = 0; j < 6; j++) {                                                            \
            T col[6], r[6];                                                                      \
            for (int i = 0; i < 6; i++) col[i] = LOAD(d[i * 6 + j] + ch);                        \
            BT6(T, col, r);                                                                      \
            for (int i = 0; i < 6; i++) t[i][j] = r[i];                                          \
        }                                                                                        \
        for (int i = 0; i < 6; i++) {                                                            \
            T r[6];                                                                              \
            BT6(T, t[i], r);                                                                     \
            for (int j = 0; j < 6; j++) STORE(out + (i * 6 + j) * stride + ch, r[j]);            \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_winograd_f4_input_tile(const float *const d[36], long c, float *out, long stride) {
    long ch = 0;
    {
        const v16 two = V16(2), four = V16(4), five = V16(5);
        for (; ch + 16 <= c; ch += 16) INPUT_TRANSFORM_F4(v16, load16, store16);
    }
    {
        const v8 two = {2, 2, 2, 2, 2, 2, 2, 2}, four = {4, 4, 4, 4, 4, 4, 4, 4}, five = {5, 5, 5, 5, 5, 5, 5, 5};
        for (; ch + 8 <= c; ch += 8) INPUT_TRANSFORM_F4(v8, load8, store8);
    }
    const float two = 2, four = 4, five = 5;
    for (; ch < c; ch++) INPUT_TRANSFORM_F4(float, LOAD1, STORE1);
}

/* Aᵀ applied to six values along one axis: four values. */
#define AT6(m, o)                                                                                \
    do {                                                                                         \
        o[0] = m[0] + (m[1] + m[2]) + (m[3] + m[4]);                                             \
        o[1] = (m[1] - m[2]) + two * (m[3] - m[4]);                                              \
        o[2] = (m[1] + m[2]) + four * (m[3] + m[4]);                                             \
        o[3] = (m[1] - m[2]) + eight * (m[3] - m[4]) + m[5];                                     \
    } while (0)

#define OUTPUT_TRANSFORM_F4(T, LOAD, STORE, ZERO, BIAS, MAX0)                                    \
    do {                                                                                         \
        T t[4][6];                                                                               \
        for (int j = 0; j < 6; j++) {                                                            \
            T col[6], o[4];                                                                      \
            for (int i = 0; i < 6; i++) col[i] = LOAD(m + (i * 6 + j) * stride + ch);            \
            AT6(col, o);                                                                         \
            for (int i = 0; i < 4; i++) t[i][j] = o[i];                                          \
        }                                                                                        \
        T b = bias ? BIAS : ZERO;                                                                \
        for (int i = 0; i < 4; i++) {                                                            \
            T o[4];                                                                              \
            AT6(t[i], o);                                                                        \
            for (int j = 0; j < 4; j++) {                                                        \
                float *p = y[i * 4 + j];                                                         \
                if (!p) continue;                                                                \
                T v = o[j] + b;                                                                  \
                STORE(p + ch, relu ? MAX0(v) : v);                                               \
            }                                                                                    \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_winograd_f4_output_tile(const float *m, long stride, long c, const float *bias, int relu, float *const y[16]) {
    long ch = 0;
    {
        const v16 zero16 = {0}, two = V16(2), four = V16(4), eight = V16(8);
        for (; ch + 16 <= c; ch += 16) OUTPUT_TRANSFORM_F4(v16, load16, store16, zero16, load16(bias + ch), max0_16);
    }
    {
        const v8 zero8 = {0}, two = {2, 2, 2, 2, 2, 2, 2, 2}, four = {4, 4, 4, 4, 4, 4, 4, 4}, eight = {8, 8, 8, 8, 8, 8, 8, 8};
        for (; ch + 8 <= c; ch += 8) OUTPUT_TRANSFORM_F4(v8, load8, store8, zero8, load8(bias + ch), max0_8);
    }
    const float two = 2, four = 4, eight = 8;
    for (; ch < c; ch++) OUTPUT_TRANSFORM_F4(float, LOAD1, STORE1, 0.0f, bias[ch], max0_1);
}

/* G applied to three values: six. */
#define G3(g, u)                                                                                 \
    do {                                                                                         \
        u[0] = quarter * g[0];                                                                   \
        u[1] = minusSixth * (g[0] + g[1] + g[2]);                                                \
        u[2] = minusSixth * (g[0] - g[1] + g[2]);                                                \
        u[3] = g[0] * a24 + g[1] * a12 + g[2] * a6;                                              \
        u[4] = g[0] * a24 - g[1] * a12 + g[2] * a6;                                              \
        u[5] = g[2];                                                                             \
    } while (0)

#define KERNEL_TRANSFORM_F4(T, LOAD, STORE, SCALE)                                               \
    do {                                                                                         \
        T rows[6][3];                                                                            \
        for (int kx = 0; kx < 3; kx++) {                                                         \
            T g[3] = {LOAD(src + kx * plane + b), LOAD(src + (3 + kx) * plane + b),              \
                      LOAD(src + (6 + kx) * plane + b)};                                         \
            T u[6];                                                                              \
            G3(g, u);                                                                            \
            for (int i = 0; i < 6; i++) rows[i][kx] = u[i];                                      \
        }                                                                                        \
        T s = SCALE;                                                                             \
        for (int i = 0; i < 6; i++) {                                                            \
            T u[6];                                                                              \
            G3(rows[i], u);                                                                      \
            for (int j = 0; j < 6; j++) STORE(out + (i * 6 + j) * plane + a * outputs + b, s * u[j]); \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx2", "default")))
void ckernels_winograd_f4_kernel(const float *kernel, long inputs, long outputs, const float *scale, float *out, long first,
                                 long last) {
    const long plane = inputs * outputs;
    for (long a = first; a < last; a++) {
        const float *src = kernel + a * outputs;
        long b = 0;
        {
            const v8 one = {1, 1, 1, 1, 1, 1, 1, 1};
            const v8 quarter = one * 0.25f, minusSixth = one * (-1.0f / 6), a24 = one * (1.0f / 24),
                     a12 = one * (1.0f / 12), a6 = one * (1.0f / 6);
            for (; b + 8 <= outputs; b += 8) KERNEL_TRANSFORM_F4(v8, load8, store8, scale ? load8(scale + b) : one);
        }
        const float quarter = 0.25f, minusSixth = -1.0f / 6, a24 = 1.0f / 24, a12 = 1.0f / 12, a6 = 1.0f / 6;
        for (; b < outputs; b++) KERNEL_TRANSFORM_F4(float, LOAD1, STORE1, scale ? scale[b] : 1.0f);
    }
}

/* A applied to four values (A is 6x4, the transpose of the output transform's Aᵀ): six.
   (p0, p0 + p1 + p2 + p3, p0 - p1 + p2 - p3, p0 + 2p1 + 4p2 + 8p3, p0 - 2p1 + 4p2 - 8p3, p3). */
#define A4(T, p, q)                                                                              \
    do {                                                                                         \
        T even = p[0] + p[2], odd = p[1] + p[3];                                                 \
        T near = p[0] + four * p[2], far = two * (p[1] + four * p[3]);                           \
        q[0] = p[0];                                                                             \
        q[1] = even + odd;                                                                       \
        q[2] = even - odd;                                                                       \
        q[3] = near + far;                                                                       \
        q[4] = near - far;                                                                       \
        q[5] = p[3];                                                                             \
    } while (0)

/* dM = A dY Aᵀ of one tile: each column of the 4x4 dY lifts to six values, then each of the six
   rows of that does. */
#define OUTPUT_GRADIENT_TRANSFORM_F4(T, LOAD, STORE)                                             \
    do {                                                                                         \
        T t[6][4];                                                                               \
        for (int j = 0; j < 4; j++) {                                                            \
            T col[4], q[6];                                                                      \
            for (int i = 0; i < 4; i++) col[i] = LOAD(dy[i * 4 + j] + ch);                       \
            A4(T, col, q);                                                                       \
            for (int i = 0; i < 6; i++) t[i][j] = q[i];                                          \
        }                                                                                        \
        for (int i = 0; i < 6; i++) {                                                            \
            T q[6];                                                                              \
            A4(T, t[i], q);                                                                      \
            for (int j = 0; j < 6; j++) STORE(out + (i * 6 + j) * stride + ch, q[j]);            \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_winograd_f4_output_gradient_tile(const float *const dy[16], long c, float *out, long stride) {
    long ch = 0;
    {
        const v16 two = V16(2), four = V16(4);
        for (; ch + 16 <= c; ch += 16) OUTPUT_GRADIENT_TRANSFORM_F4(v16, load16, store16);
    }
    {
        const v8 two = {2, 2, 2, 2, 2, 2, 2, 2}, four = {4, 4, 4, 4, 4, 4, 4, 4};
        for (; ch + 8 <= c; ch += 8) OUTPUT_GRADIENT_TRANSFORM_F4(v8, load8, store8);
    }
    {
        const float two = 2, four = 4;
        for (; ch < c; ch++) OUTPUT_GRADIENT_TRANSFORM_F4(float, LOAD1, STORE1);
    }
}

/* Gᵀ applied to six values: three. With G's rows (1/4, 0, 0), -(1, 1, 1)/6, -(1, -1, 1)/6,
   (1/24, 1/12, 1/6), (1/24, -1/12, 1/6), (0, 0, 1). */
#define GT6(T, u, r)                                                                             \
    do {                                                                                         \
        T sum12 = u[1] + u[2], diff12 = u[1] - u[2], sum34 = u[3] + u[4], diff34 = u[3] - u[4];  \
        r[0] = quarter * u[0] + minusSixth * sum12 + a24 * sum34;                                \
        r[1] = minusSixth * diff12 + a12 * diff34;                                               \
        r[2] = minusSixth * sum12 + a6 * sum34 + u[5];                                           \
    } while (0)

/* dW += Gᵀ dU G for one channel pair's 36 elements (stride apart): along columns (kx), then rows (ky). */
#define KERNEL_GRADIENT_TRANSFORM_F4(T, LOAD, STORE)                                             \
    do {                                                                                         \
        T r[6][3];                                                                               \
        for (int i = 0; i < 6; i++) {                                                            \
            T u[6];                                                                              \
            for (int j = 0; j < 6; j++) u[j] = LOAD(du + (i * 6 + j) * stride + ch);             \
            GT6(T, u, r[i]);                                                                     \
        }                                                                                        \
        for (int kx = 0; kx < 3; kx++) {                                                         \
            T u[6], g[3];                                                                        \
            for (int i = 0; i < 6; i++) u[i] = r[i][kx];                                         \
            GT6(T, u, g);                                                                        \
            for (int ky = 0; ky < 3; ky++) {                                                     \
                float *p = dw + (ky * 3 + kx) * stride + ch;                                     \
                STORE(p, LOAD(p) + g[ky]);                                                       \
            }                                                                                    \
        }                                                                                        \
    } while (0)

__attribute__((target_clones("avx2", "default")))
void ckernels_winograd_f4_kernel_gradient(const float *du, long cin, long cout, float *dw, long first, long last) {
    const long stride = cin * cout;
    du += first * cout;
    dw += first * cout;
    for (long ci = first; ci < last; ci++, du += cout, dw += cout) {
        long ch = 0;
        {
            const v8 one = {1, 1, 1, 1, 1, 1, 1, 1};
            const v8 quarter = one * 0.25f, minusSixth = one * (-1.0f / 6), a24 = one * (1.0f / 24),
                     a12 = one * (1.0f / 12), a6 = one * (1.0f / 6);
            for (; ch + 8 <= cout; ch += 8) KERNEL_GRADIENT_TRANSFORM_F4(v8, load8, store8);
        }
        {
            const float quarter = 0.25f, minusSixth = -1.0f / 6, a24 = 1.0f / 24, a12 = 1.0f / 12, a6 = 1.0f / 6;
            for (; ch < cout; ch++) KERNEL_GRADIENT_TRANSFORM_F4(float, LOAD1, STORE1);
        }
    }
}
