#include "ckernels.h"

/* Memory-bound loops over activations, vectorised per CPU (the Swift code they replaced is compiled
   for the x86-64 baseline, SSE2). Selections and copies only: every clone gives the same bits. */

__attribute__((target_clones("avx2", "default")))
void ckernels_maxpool_backward(const float *dy, const unsigned char *taps, long rows, long ow, long c, long w,
                               float *dx) {
    for (long row = 0; row < rows; row++) {
        for (long j = 0; j < ow; j++) {
            const long o = (row * ow + j) * c;
            const float *g = dy + o;
            const unsigned char *t = taps + o;
            float *top = dx + (row * 2 * w + 2 * j) * c, *bottom = top + w * c;
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
