#ifndef CKERNELS_H
#define CKERNELS_H
/* The engine's innermost elementwise loops, written in C because the same code in Swift SIMD
   types (one expression tree of dozens of SIMD8 operations per tile) cost minutes of optimiser
   time per build. Plain additions and subtractions in a fixed order: results do not depend on the
   instruction set the loader picks. One header for Swift; the file holding each group is named
   beside it. */

/* Winograd F(2x2, 3x3) (winograd_f2.c) input transform of one tile: d[i*4+j] points at the c channels of input
   pixel (i, j) of the 4x4 block (a zero row where the block leaves the image); element k of
   B^T d B for every channel goes to out + k*stride. */
void ckernels_winograd_input_tile(const float *const d[16], long c, float *out, long stride);

/* Winograd F(2x2, 3x3) output transform of one tile: element k of every channel read from
   m + k*stride; A^T m A, plus bias (may be NULL), clamped at zero when relu is set, written to
   y[0..3] (output pixels (0,0), (0,1), (1,0), (1,1)); a NULL y[i] lies outside the image. */
void ckernels_winograd_output_tile(const float *m, long stride, long c, const float *bias, int relu, float *const y[4]);

/* Winograd F(2x2, 3x3) kernel transform: kernel is (3, 3, inputs, outputs) (HWIO); for every channel
   pair (a, b), the 16 elements of G g Gᵀ, each multiplied by scale[b] when scale is not NULL, go
   to u[k*inputs*outputs + a*outputs + b]; for a in [first, last) (callers split the range across threads). */
void ckernels_winograd_kernel(const float *kernel, long inputs, long outputs, const float *scale, float *u, long first,
                              long last);

/* The HWIO 3x3 kernel (3, 3, cin, cout) rotated by 180 degrees with its channels swapped, as
   (3, 3, cout, cin): out[ky][kx][co][ci] = kernel[2-ky][2-kx][ci][co], for taps ky*3+kx in [first, last). */
void ckernels_rotate_swap_3x3(const float *kernel, long cin, long cout, float *out, long first, long last);

/* Winograd F(4x4, 3x3), the same three transforms on 6x6 input tiles and 4x4 output tiles
   (winograd_f4.c): 36 elements per tile, y[0..15] the output pixels row by row. */
void ckernels_winograd_f4_input_tile(const float *const d[36], long c, float *out, long stride);
void ckernels_winograd_f4_output_tile(const float *m, long stride, long c, const float *bias, int relu, float *const y[16]);
void ckernels_winograd_f4_kernel(const float *kernel, long inputs, long outputs, const float *scale, float *out, long first,
                                 long last);
/* Its weight gradient: dM = A dY Aᵀ of one tile, dy[0..15] the tile's output-gradient pixels row by row
   (a zero row outside the image), element k of every channel to out + k*stride; and dw += Gᵀ dU G
   from the 36 cin x cout planes of du, for ci in [first, last) (as the F(2x2) pair below). */
void ckernels_winograd_f4_output_gradient_tile(const float *const dy[16], long c, float *out, long stride);
void ckernels_winograd_f4_kernel_gradient(const float *du, long cin, long cout, float *dw, long first, long last);

/* Direct 3x3 convolutions ("same" padding, stride 1, NHWC source, HWIO kernel) for narrow layers,
   in register blocks of output pixels x 16 output channels (forward) or of kernel taps x 16 output
   channels (filter gradient), as oneDNN's brgemm kernels do. The ISA is chosen by the caller (one
   per process, recorded), so that results are the same run to run; every ISA sums in the same
   order, but plain C multiplies and adds where the others fuse them. */
enum { CKERNELS_ISA_PLAIN = 0, CKERNELS_ISA_AVX2 = 1, CKERNELS_ISA_AVX512 = 2 };

/* Whether this CPU runs the kernels of `isa` (AVX2 and AVX-512F both with FMA). */
int ckernels_direct_isa_supported(int isa);

/* Floats of scratch one call below needs, for rows of w pixels of `channels` channels. */
long ckernels_direct_scratch_floats(long w, long channels);

/* target rows [row0, row1) of the n*h image rows = conv3x3(source (n, h, w, cs), kernel (3, 3, cs, ct))
   + bias (may be NULL), clamped at zero when relu is set. ct a multiple of 16. */
void ckernels_direct_conv3x3(int isa, const float *source, long h, long w, long cs, const float *kernel, long ct,
                             const float *bias, int relu, float *target, long row0, long row1, float *scratch);

/* partial[(ky, kx, ci, co)] += dW of the output rows [row0, row1) (HWIO, as the kernel), and
   partial[9 * cin * cout + co] += their bias gradient, summed row by row in order. cout a multiple of 16. */
void ckernels_direct_conv3x3_filter_gradient(int isa, const float *source, const float *gradient, long h, long w,
                                             long cin, long cout, long row0, long row1, float *partial,
                                             float *scratch);

/* 2x2 max-pool backward of `rows` output rows (row = image * oh + i, the first at dy/taps/dx as
   passed) of ow pixels and c channels, input rows w pixels wide: the winning tap (taps, 0-3 in
   order (0,0), (0,1), (1,0), (1,1)) gets the gradient, the other three zero. With `add`, each
   input pixel's c channels also get add's (pixels add_stride floats apart, counted like dx's):
   a second gradient of the pooled tensor, summed in the same pass. */
void ckernels_maxpool_backward(const float *dy, const unsigned char *taps, long rows, long ow, long c, long w,
                               const float *add, long add_stride, float *dx);

/* BatchNorm over `rows` rows of c channels (elementwise.c). moments: sum[i] += x, squares[i] += x^2;
   gradient_sums: with xhat = (x - mean) * invstd and d = dy (with relu set: zero where
   gamma * xhat + beta, the forward output before its ReLU, is not positive), sum[i] += d,
   products[i] += d * xhat; both sum in float within
   blocks of 64 rows and add each block to the doubles (scratch: 2c floats). normalize:
   y = gamma * xhat + beta, clamped at zero when relu is set, y's rows y_stride floats apart (a
   slice of a wider tensor). input_gradient:
   dx = scale * (d - mean_dbeta - xhat * mean_dgamma). */
void ckernels_bn_moments(const float *x, long rows, long c, double *sum, double *squares, float *scratch);
void ckernels_bn_gradient_sums(const float *dy, const float *x, const float *gamma, const float *beta, int relu,
                               const float *mean, const float *invstd, long rows, long c, double *sum, double *products,
                               float *scratch);
void ckernels_bn_normalize(const float *x, long rows, long c, const float *mean, const float *invstd, const float *gamma,
                           const float *beta, int relu, float *y, long y_stride);
void ckernels_bn_input_gradient(const float *dy, const float *x, const float *gamma, const float *beta, int relu,
                                const float *mean, const float *invstd, const float *scale, const float *mean_dbeta,
                                const float *mean_dgamma, long rows, long c, float *dx);

/* The U-Net's head and loss (elementwise.c). pointwise_single: y[r] = bias + sum over i of
   x[r, i] w[i] (clamped at zero with relu), a 1x1 convolution to one channel. sigmoid:
   y = 1 / (1 + e^-x), with an exp polynomial of about 1 ulp. loss_sums: sums[0..3] += sum(y p),
   sum(y), sum(p), and (with bce) the summed binary cross-entropy of p clipped to [eps, 1 - eps]. */
void ckernels_pointwise_single(const float *x, long rows, long c, const float *w, float bias, int relu, float *y);
void ckernels_sigmoid(const float *x, long count, float *y);
void ckernels_loss_sums(const float *p, const float *y, long count, float eps, int bce, double sums[4]);
/* loss_gradient: g = (with bce) (-(y / p) + (1 - y) / (1 - p)) * inv_n inside the clip range, 0
   outside, plus (with dice) -(a y - b). */
void ckernels_loss_gradient(const float *p, const float *y, long count, float eps, int bce, float inv_n, int dice, float a,
                            float b, float *g);

/* The 2x2, stride-2 transposed convolution's scatter of its GEMM's rows (z: 4c floats per input
   pixel, pixels first ..< first + rows of images h x w) into y (2h x 2w, pixels `stride` floats
   apart) plus the bias, and its backward's gather of those rows from g with the bias gradient's
   sums (elementwise.c). */
void ckernels_upsample_scatter(const float *z, long first, long rows, long h, long w, long c, const float *bias, float *y,
                               long stride);
void ckernels_upsample_gather(const float *g, long stride, long first, long rows, long h, long w, long c, float *dz,
                              float *db);

/* Winograd F(2x2, 3x3) weight gradient, output side: dy[0..3] point at the c channels of the
   tile's output-gradient pixels (0,0), (0,1), (1,0), (1,1) (a zero row outside the image);
   element k of A dY A^T for every channel goes to out + k*stride. */
void ckernels_winograd_output_gradient_tile(const float *const dy[4], long c, float *out, long stride);

/* Winograd F(2x2, 3x3) weight gradient, kernel side: du holds the 16 transformed gradients
   dU[k][ci][co] (each a cin x cout plane); adds G^T dU G to the HWIO gradient dw (3, 3, cin, cout), for ci
   in [first, last). */
void ckernels_winograd_kernel_gradient(const float *du, long cin, long cout, float *dw, long first, long last);

/* Winograd's transform-domain products for narrow layers (winograd_small_gemm.c): for xi in
   0..<elements, M[xi] (count x ct, at m + xi*m_stride) = V[xi] (count x cs, at v + xi*v_stride)
   U[xi] (cs x ct, at u + xi*cs*ct), all row-major and dense. ct a multiple of 16. Each element
   sums over cs in order (deterministic for a given isa: CKERNELS_ISA_AVX512 fuses multiply-adds,
   any other value runs plain C). */
void ckernels_winograd_small_gemm(int isa, const float *v, long v_stride, long count, long cs, const float *u, long ct,
                                  float *m, long m_stride, long elements);
#endif
