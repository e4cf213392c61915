#include "ckernels.h"

/* Memory-bound loops over activations, vectorised per CPU (the Swift code they replaced is compiled
   for the x86-64 baseline, SSE2), with a clone per vector width. Nothing is contracted into fused
   multiply-adds and no sum is reordered across elements, so every clone gives the same bits. */
#pragma clang fp contract(off)

__attribute__((target_clones("avx512f", "avx2", "default")))
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

#define BN_BLOCK 64

__attribute__((target_clones("avx512f", "avx2", "default")))
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
__attribute__((target_clones("avx512f", "avx2", "default")))
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

__attribute__((target_clones("avx512f", "avx2", "default")))
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

__attribute__((target_clones("avx512f", "avx2", "default")))
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

/* The U-Net's head: a 1x1 convolution to one channel (y = bias + x . w per pixel, the sum in
   channel order), optionally followed by the sigmoid. A GEMM with one output column spent its
   time on the library's packing. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_pointwise_single(const float *x, long rows, long c, const float *w, float bias, int relu, float *y) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * c;
        float acc = bias;
        for (long i = 0; i < c; i++) acc += row[i] * w[i];
        y[r] = relu && acc < 0 ? 0.0f : acc;
    }
}

/* exp(x) for float, branch-free so that it vectorises: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in
   two parts, Cody-Waite), e^r by Cephes's degree-6 polynomial (about 1 ulp), times 2^n built in
   the exponent bits. Below -87.3 (where e^x leaves float's normal range) it returns 0, above 88
   e^88. */
static inline float exp_poly(float input) {
    const float x = input < -87.3f ? -87.3f : (input > 88.0f ? 88.0f : input);
    const float t = x * 1.44269504088896341f + 0.5f;
    /* floor(t) without libm, exact for |t| < 2^23 */
    float n = (float)(int)t;
    n = n > t ? n - 1.0f : n;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = p * (r * r) + r + 1.0f;
    union { int i; float f; } scale;
    scale.i = ((int)n + 127) << 23;
    return input < -87.3f ? 0.0f : e * scale.f;
}

/* y = 1 / (1 + e^-x), as e^-|x| so that the exponential never overflows. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_sigmoid(const float *x, long count, float *y) {
    for (long i = 0; i < count; i++) {
        const float v = x[i];
        const float e = exp_poly(v < 0 ? v : -v);
        const float s = 1.0f / (1.0f + e);
        y[i] = v < 0 ? e * s : s;
    }
}

/* log(x) for positive normal float x, branch-free: x = m 2^k with m in [sqrt(1/2), sqrt(2)),
   log(m) by Cephes's polynomial in m - 1 (about 1 ulp), plus k ln2 in two parts. */
static inline float log_poly(float x) {
    union { float f; int i; } u = {x};
    int k = ((u.i >> 23) & 0xff) - 126;
    u.i = (u.i & 0x007fffff) | 0x3f000000; /* m in [0.5, 1) */
    float m = u.f;
    const int small = m < 0.707106781186547524f;
    k -= small;
    m = small ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m + -1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m + -1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m + -1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m + -2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    const float kf = (float)k;
    float y = m * z * p;
    y = y + kf * -2.12194440e-4f;
    y = y - 0.5f * z;
    return m + y + kf * 0.693359375f;
}

/* The segmentation losses' sums over p (probabilities) and y (binary targets): sums[0] += y p,
   sums[1] += y, sums[2] += p, sums[3] += the binary cross-entropy -(y log pc + (1 - y) log(1 - pc))
   with pc = p clipped to [eps, 1 - eps] (with bce set). Float within blocks of 64 elements,
   double across blocks, so the result does not depend on the vector width. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_loss_sums(const float *p, const float *y, long count, float eps, int bce, double sums[4]) {
    float terms[BN_BLOCK];
    for (long start = 0; start < count; start += BN_BLOCK) {
        const long end = start + BN_BLOCK < count ? start + BN_BLOCK : count, length = end - start;
        /* The block's cross-entropy terms first, in a loop with no sum in it (so that the logs
           vectorise), then the sums in element order. */
        if (bce) {
            for (long k = 0; k < length; k++) {
                const float pi = p[start + k], yi = y[start + k];
                const float pc = pi < eps ? eps : (pi > 1.0f - eps ? 1.0f - eps : pi);
                terms[k] = yi * log_poly(pc) + (1.0f - yi) * log_poly(1.0f - pc);
            }
        }
        float a = 0, b = 0, c = 0, d = 0;
        for (long k = 0; k < length; k++) {
            const float pi = p[start + k], yi = y[start + k];
            a += yi * pi;
            b += yi;
            c += pi;
            if (bce) d -= terms[k];
        }
        sums[0] += a; sums[1] += b; sums[2] += c; sums[3] += d;
    }
}

/* The gradient of those losses with respect to p: with bce set, (-(y / p) + (1 - y) / (1 - p)) / n
   where p is inside the clip range (the clip's gradient is zero outside); with dice set, minus
   (a y - b), the dice term's (a and b from the sums). */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_loss_gradient(const float *p, const float *y, long count, float eps, int bce, float inv_n, int dice, float a,
                            float b, float *g) {
    for (long i = 0; i < count; i++) {
        const float pi = p[i], yi = y[i];
        float v = 0;
        if (bce) {
            const float term = (-(yi / pi) + (1.0f - yi) / (1.0f - pi)) * inv_n;
            v += pi > eps && pi < 1.0f - eps ? term : 0.0f;
        }
        if (dice) v += -(a * yi - b);
        g[i] = v;
    }
}

/* The 2x2, stride-2 transposed convolution's scatter: input pixels first .. first + rows - 1
   (counted across images of h x w) each hold 2x2 output pixels of c channels in z (row r at
   z + (r - first) * 4c, in the order (0,0), (0,1), (1,0), (1,1)); each goes to its place in y
   (images 2h x 2w, pixels `stride` floats apart) plus the bias. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_upsample_scatter(const float *z, long first, long rows, long h, long w, long c, const float *bias, float *y,
                               long stride) {
    for (long r = first; r < first + rows; r++) {
        const long image = r / (h * w), p = r % (h * w), i = p / w, j = p % w;
        const float *src = z + (r - first) * 4 * c;
        for (long dy = 0; dy < 2; dy++) {
            float *dst = y + ((image * 2 * h + 2 * i + dy) * 2 * w + 2 * j) * stride;
            const float *s = src + dy * 2 * c;
            for (long ch = 0; ch < c; ch++) dst[ch] = s[ch] + bias[ch];
            for (long ch = 0; ch < c; ch++) dst[stride + ch] = s[c + ch] + bias[ch];
        }
    }
}

/* Its backward's gather, the inverse: dz gets each input pixel's 2x2 output-pixel gradients from
   g (pixels `stride` floats apart), and db adds them, pixel by pixel in that order. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ckernels_upsample_gather(const float *g, long stride, long first, long rows, long h, long w, long c, float *dz,
                              float *db) {
    for (long r = first; r < first + rows; r++) {
        const long image = r / (h * w), p = r % (h * w), i = p / w, j = p % w;
        float *dst = dz + (r - first) * 4 * c;
        for (long dy = 0; dy < 2; dy++) {
            const float *src = g + ((image * 2 * h + 2 * i + dy) * 2 * w + 2 * j) * stride;
            float *d = dst + dy * 2 * c;
            for (long ch = 0; ch < c; ch++) { d[ch] = src[ch]; db[ch] += src[ch]; }
            for (long ch = 0; ch < c; ch++) { d[c + ch] = src[stride + ch]; db[ch] += src[stride + ch]; }
        }
    }
}
