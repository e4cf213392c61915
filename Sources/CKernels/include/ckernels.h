#ifndef CKERNELS_H
#define CKERNELS_H
/* The engine's innermost elementwise loops, written in C because the same code in Swift SIMD
   types (one expression tree of dozens of SIMD8 operations per tile) cost minutes of optimiser
   time per build. Plain additions and subtractions in a fixed order: results do not depend on the
   instruction set the loader picks. */

/* Winograd F(2x2, 3x3) input transform of one tile: d[i*4+j] points at the c channels of input
   pixel (i, j) of the 4x4 block (a zero row where the block leaves the image); element k of
   B^T d B for every channel goes to out + k*stride. */
void ckernels_winograd_input_tile(const float *const d[16], long c, float *out, long stride);

/* Winograd F(2x2, 3x3) output transform of one tile: element k of every channel read from
   m + k*stride; A^T m A, plus bias (may be NULL), clamped at zero when relu is set, written to
   y[0..3] (output pixels (0,0), (0,1), (1,0), (1,1)); a NULL y[i] lies outside the image. */
void ckernels_winograd_output_tile(const float *m, long stride, long c, const float *bias, int relu, float *const y[4]);

/* Winograd F(2x2, 3x3) weight gradient, output side: dy[0..3] point at the c channels of the
   tile's output-gradient pixels (0,0), (0,1), (1,0), (1,1) (a zero row outside the image);
   element k of A dY A^T for every channel goes to out + k*stride. */
void ckernels_winograd_output_gradient_tile(const float *const dy[4], long c, float *out, long stride);

/* Winograd F(2x2, 3x3) weight gradient, kernel side: du holds the 16 transformed gradients
   dU[k][ci][co] (each a cin x cout plane); adds G^T dU G to the HWIO gradient dw (3, 3, cin, cout). */
void ckernels_winograd_kernel_gradient(const float *du, long cin, long cout, float *dw);
#endif
