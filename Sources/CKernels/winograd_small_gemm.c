#include "ckernels.h"

/* Winograd's transform-domain products for narrow layers: M[xi] = V[xi] U[xi] with V[xi]
   (count x cs) and M[xi] (count x ct) rows of one chunk's tiles and U[xi] (cs x ct) the
   transformed kernel, all row-major as Winograd.convolve lays them out. At 16-64 channels
   cblas_sgemm spends most of its time packing these tiny operands; here a register block of
   tiles x 16 or 32 output channels sums over cs straight from the buffers: per k, one or two
   vectors of U loaded and one broadcast of V per tile (a fused multiply-add's memory operand). */

typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define load16(p) (*(const v16 *)(p))
#define store16(p, v) (*(v16 *)(p) = (v))

/* m[r * ct + 16 j] = sum over k in 0..<cs, in order, of v[r * cs + k] * u[k * ct + 16 j] for R
   tiles r and NB vectors j: each element is one chain of multiply-adds in k order, so it does
   not depend on the blocking. */
#define BLOCK(ISA, TARGET, R, NB)                                                                   \
    TARGET static inline __attribute__((always_inline)) void block_##ISA##_##R##_##NB(                \
        const float *v, const long cs, const float *u, const long ct, float *m) {                   \
        v16 acc[R][NB];                                                                             \
        _Pragma("clang loop unroll(full)")                                                          \
        for (int r = 0; r < R; r++) {                                                               \
            _Pragma("clang loop unroll(full)")                                                      \
            for (int j = 0; j < NB; j++) acc[r][j] = (v16){0};                                      \
        }                                                                                           \
        for (long k = 0; k < cs; k++) {                                                             \
            v16 b[NB];                                                                              \
            _Pragma("clang loop unroll(full)")                                                      \
            for (int j = 0; j < NB; j++) b[j] = load16(u + k * ct + 16 * j);                       \
            _Pragma("clang loop unroll(full)")                                                      \
            for (int r = 0; r < R; r++) {                                                           \
                const float a = v[r * cs + k];                                                      \
                _Pragma("clang loop unroll(full)")                                                  \
                for (int j = 0; j < NB; j++) acc[r][j] += a * b[j];                                 \
            }                                                                                       \
        }                                                                                           \
        _Pragma("clang loop unroll(full)")                                                          \
        for (int r = 0; r < R; r++) {                                                               \
            _Pragma("clang loop unroll(full)")                                                      \
            for (int j = 0; j < NB; j++) store16(m + r * ct + 16 * j, acc[r][j]);                   \
        }                                                                                           \
    }

/* R tiles, every output-channel block (32 wide, then 16) while the tiles' rows of V are in L1. */
#define TILE_BLOCK(ISA, TARGET, R)                                                                  \
    BLOCK(ISA, TARGET, R, 2)                                                                        \
    BLOCK(ISA, TARGET, R, 1)                                                                        \
    TARGET static inline __attribute__((always_inline)) void tiles_##ISA##_##R(                       \
        const float *v, const long cs, const float *u, const long ct, float *m) {                   \
        long co0 = 0;                                                                               \
        for (; co0 + 32 <= ct; co0 += 32) block_##ISA##_##R##_2(v, cs, u + co0, ct, m + co0);      \
        if (co0 < ct) block_##ISA##_##R##_1(v, cs, u + co0, ct, m + co0);                          \
    }

/* All elements' products: 12 tiles a block (24 accumulators and U's two vectors fit AVX-512's
   32 registers), the chunk's last tiles 4, then 1, at a time. */
#define PRODUCTS(ISA, TARGET)                                                                       \
    TILE_BLOCK(ISA, TARGET, 12)                                                                     \
    TILE_BLOCK(ISA, TARGET, 4)                                                                      \
    TILE_BLOCK(ISA, TARGET, 1)                                                                      \
    TARGET static inline __attribute__((always_inline)) void products_body_##ISA(                     \
        const float *v, long v_stride, long count, const long cs, const float *u, const long ct, float *m, \
        long m_stride, long elements) {                                                             \
        for (long xi = 0; xi < elements; xi++) {                                                    \
            const float *vx = v + xi * v_stride, *ux = u + xi * cs * ct;                            \
            float *mx = m + xi * m_stride;                                                          \
            long t = 0;                                                                             \
            for (; t + 12 <= count; t += 12) tiles_##ISA##_12(vx + t * cs, cs, ux, ct, mx + t * ct); \
            for (; t + 4 <= count; t += 4) tiles_##ISA##_4(vx + t * cs, cs, ux, ct, mx + t * ct);   \
            for (; t < count; t++) tiles_##ISA##_1(vx + t * cs, cs, ux, ct, mx + t * ct);           \
        }                                                                                           \
    }

/* The U-Nets' channel counts as constants: each tile's and each k's offset folds into the
   load's displacement and the k loop unrolls. */
#define DISPATCH(ISA, TARGET)                                                                       \
    TARGET static void products_##ISA(const float *v, long v_stride, long count, long cs, const float *u, long ct, \
                                      float *m, long m_stride, long elements) {                     \
        if (cs == 16 && ct == 16) products_body_##ISA(v, v_stride, count, 16, u, 16, m, m_stride, elements); \
        else if (cs == 32 && ct == 16) products_body_##ISA(v, v_stride, count, 32, u, 16, m, m_stride, elements); \
        else if (cs == 16 && ct == 32) products_body_##ISA(v, v_stride, count, 16, u, 32, m, m_stride, elements); \
        else if (cs == 32 && ct == 32) products_body_##ISA(v, v_stride, count, 32, u, 32, m, m_stride, elements); \
        else products_body_##ISA(v, v_stride, count, cs, u, ct, m, m_stride, elements);             \
    }

PRODUCTS(avx512, __attribute__((target("avx512f,fma"))))
DISPATCH(avx512, __attribute__((target("avx512f,fma"))))
PRODUCTS(plain, )
DISPATCH(plain, )

void ckernels_winograd_small_gemm(int isa, const float *v, long v_stride, long count, long cs, const float *u, long ct,
                                  float *m, long m_stride, long elements) {
    if (isa == CKERNELS_ISA_AVX512) products_avx512(v, v_stride, count, cs, u, ct, m, m_stride, elements);
    else products_plain(v, v_stride, count, cs, u, ct, m, m_stride, elements);
}
