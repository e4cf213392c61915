#include "ckernels.h"

/* Memory-bound loops over activations, vectorised per CPU (the Swift code they replaced is compiled
   for the x86-64 baseline, SSE2). Selections and copies only: every clone gives the same bits. */

__attribute__((target_clones("avx2", "default")))
void ckernels_maxpool_backward(const float *dy, const unsigned char *taps, long rows, long ow, long c, long w,
                               const float *add, long add_stride, float *dx) {
    for (long row = 0; row < rows; row++) {
        for (long j = 0; j < ow; j++) {
            const long o = (row * ow + j) * c;
            const float *g = dy + o;
            const unsigned char *t = taps + o;
            const long pixel = row * 2 * w + 2 * j;
            float *top = dx + pixel * c, *bottom = top + w * c;
            if (add) {
                const float *atop = add + pixel * add_stride, *abottom = atop + w * add_stride;
                const float *atop1 = atop + add_stride, *abottom1 = abottom + add_stride;
                for (long ch = 0; ch < c; ch++) {
                    const float v = g[ch];
                    const unsigned char k = t[ch];
                    top[ch] = (k == 0 ? v : 0.0f) + atop[ch];
                    top[c + ch] = (k == 1 ? v : 0.0f) + atop1[ch];
                    bottom[ch] = (k == 2 ? v : 0.0f) + abottom[ch];
                    bottom[c + ch] = (k == 3 ? v : 0.0f) + abottom1[ch];
                }
            } else {
                for (long ch = 0; ch < c; ch++) {
                    const float v = g[ch];
                    const unsigned char k = t[ch];
                    top[ch] = k == 0 ? v : 0.0f;
                    top[c + ch] = k == 1 ? v : 0.0f;
                    bottom[ch] = k == 2 ? v : 0.0f;
                    bottom[c + ch] = k == 3 ? v : 0.0f;
                }
            }
        }
    }
}

/* BatchNorm's passes. Each channel's sums run over the rows in order, in float within blocks of 64
   rows and in double across blocks, so the result does not depend on the vector width. */
#pragma clang fp contract(off)

#define BN_BLOCK 64

__attribute__((target_clones("avx2", "default")))
void ckernels_bn_moments(const float *x, long rows, long c, double *sum, double *squares, float *scratch) {
    float *a = scratch, *b = scratch + c;
    for (long r = 0; r < rows; r += BN_BLOCK) {
        const long end = r + BN_BLOCK < rows ? r + BN_BLOCK : rows;
        for (long i = 0; i < c; i++) { a[i] = 0; b[i] = 0; }
        for (long rr = r; rr < end; rr++) {
            const float *row = x + rr * c;
            for (long i = 0; i < c; i++) { const float v = row[i]; a[i] += v; b[i] += v * v; }
        }
        for (long i = 0; i < c; i++) { sum[i] += a[i]; squares[i] += b[i]; }
    }
}

/* With a ReLU after the normalisation, the gradient passes where the forward output was positive:
   where gamma * xhat + beta, recomputed here with the forward pass's operations (the same bits),
   is above zero. Reading x for the mask instead of the output saves a third of the traffic. */
__attribute__((target_clones("avx2", "default")))
void ckernels_bn_gradient_sums(const float *dy, const float *x, const float *gamma, const float *beta, int relu,
                               const float *mean, const float *invstd, long rows, long c, double *sum, double *products,
                               float *scratch) {
    float *a = scratch, *b = scratch + c;
    for (long r = 0; r < rows; r += BN_BLOCK) {
        const long end = r + BN_BLOCK < rows ? r + BN_BLOCK : rows;
        for (long i = 0; i < c; i++) { a[i] = 0; b[i] = 0; }
        for (long rr = r; rr < end; rr++) {
            const float *g = dy + rr * c, *row = x + rr * c;
            if (relu) {
                for (long i = 0; i < c; i++) {
                    const float xhat = (row[i] - mean[i]) * invstd[i];
                    const float d = gamma[i] * xhat + beta[i] <= 0 ? 0.0f : g[i];
                    a[i] += d;
                    b[i] += d * xhat;
                }
            } else {
                for (long i = 0; i < c; i++) {
                    const float d = g[i];
                    a[i] += d;
                    b[i] += d * ((row[i] - mean[i]) * invstd[i]);
                }
            }
        }
        for (long i = 0; i < c; i++) { sum[i] += a[i]; products[i] += b[i]; }
    }
}

__attribute__((target_clones("avx2", "default")))
void ckernels_bn_normalize(const float *x, long rows, long c, const float *mean, const float *invstd, const float *gamma,
                           const float *beta, int relu, float *y, long y_stride) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * c;
        float *out = y + r * y_stride;
        if (relu) {
            for (long i = 0; i < c; i++) {
                const float v = gamma[i] * ((row[i] - mean[i]) * invstd[i]) + beta[i];
                out[i] = v < 0 ? 0.0f : v;
            }
        } else {
            for (long i = 0; i < c; i++) out[i] = gamma[i] * ((row[i] - mean[i]) * invstd[i]) + beta[i];
        }
    }
}

__attribute__((target_clones("avx2", "default")))
void ckernels_bn_input_gradient(const float *dy, const float *x, const float *gamma, const float *beta, int relu,
                                const float *mean, const float *invstd, const float *scale, const float *mean_dbeta,
                                const float *mean_dgamma, long rows, long c, float *dx) {
    for (long r = 0; r < rows; r++) {
        const float *g = dy + r * c, *row = x + r * c;
        float *out = dx + r * c;
        if (relu) {
            for (long i = 0; i < c; i++) {
                const float xhat = (row[i] - mean[i]) * invstd[i];
                const float d = gamma[i] * xhat + beta[i] <= 0 ? 0.0f : g[i];
                out[i] = scale[i] * (d - mean_dbeta[i] - xhat * mean_dgamma[i]);
            }
        } else {
            for (long i = 0; i < c; i++) {
                const float xhat = (row[i] - mean[i]) * invstd[i];
                out[i] = scale[i] * (g[i] - mean_dbeta[i] - xhat * mean_dgamma[i]);
            }
        }
    }
}
