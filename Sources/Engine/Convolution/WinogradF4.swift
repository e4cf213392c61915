import CKernels

/// The "same" 3x3, stride-1 convolution of NHWC tensors by Winograd's F(4x4, 3x3): each 4x4 block
/// of output pixels comes from a 6x6 block of input pixels with 36 multiplications per channel
/// pair instead of 144, a 4x cut (F(2x2, 3x3), `Winograd`, cuts 2.25x). The same scheme as
/// `Winograd`, with 36 transformed elements per tile:
///
///     V[ξ][t, ci] = (Bᵀ d_t B)[ξ],  U[ξ][ci, co] = (G g Gᵀ)[ξ],  M[ξ] = V[ξ] U[ξ] (36 GEMMs),
///     Y_t = Aᵀ M_t A (+ bias, ReLU)
///
/// with the interpolation points 0, ±1, ±2 and ∞ (Lavin and Gray's matrices; transforms in C,
/// `winograd_f4.c`). The price is accuracy: the transforms multiply by up to 8 and 1/24, so the
/// float32 error grows. Measured against float64 over random layers of 5-256 channels it stays
/// below 8.1e-6 of the output's largest magnitude (`WinogradF4Tests` asserts 2e-5), against 4.6e-7
/// for F(2x2, 3x3) — about the rounding of a 10-16 term float32 sum; the U-Net golden tests
/// (Keras values, 1e-4) pass with it. The weight gradient (`weightGradient`) carries both
/// transforms' factors (A's up to 8 on the output gradient, G's 1/4 to 1/24 on the sums):
/// against a float64 direct weight gradient it measured at most 5.8e-6 of the largest gradient
/// element (1x1 to 64x64 images, odd sides, 5-256 channels, zero-mean and non-negative inputs),
/// about 14x F(2x2)'s 4.1e-7 (`WinogradF4Tests` asserts 2e-5).
///
/// Tiles are 4x4 output pixels, so an 8x8 image has only 4 tiles per image and the 36 GEMMs get
/// short; `ConvolutionPlan` uses it only on images of at least `minimumSide` pixels.
enum WinogradF4 {
    static let tileElements = 36
    /// Smallest image side it runs on (below, too few tiles per GEMM).
    static let minimumSide = 16

    /// The 36 transformed kernels `U[ξ][a, b]`, as `Winograd.kernelMatrices` (forward, or the
    /// rotated, channel-swapped kernel for the input gradient).
    static func kernelMatrices(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int, columnScale: [Float]? = nil,
                               forInputGradient: Bool = false) -> [Float] {
        Winograd.transformedKernel(kernel, cin: cin, cout: cout, columnScale: columnScale, forInputGradient: forInputGradient,
                                   elements: tileElements, transform: ckernels_winograd_f4_kernel)
    }

    /// `target (n, h, w, ct) = conv3x3(source (n, h, w, cs))` with `matrices` from `kernelMatrices`,
    /// plus `bias`, optionally followed by a ReLU. Every element of the target is written. Split
    /// by tiles across threads; each tile's outputs come from the same GEMM rows in the same order
    /// whatever the split.
    static func convolve(_ source: UnsafePointer<Float>, n: Int, h: Int, w: Int, sourceChannels cs: Int,
                         matrices: UnsafePointer<Float>, targetChannels ct: Int, bias: UnsafePointer<Float>?,
                         relu: Bool, into target: UnsafeMutablePointer<Float>, smallGemm: DirectConvolution.ISA?,
                         workspace: Workspace) {
        Winograd.convolve(source, n: n, h: h, w: w, sourceChannels: cs, matrices: matrices, targetChannels: ct, bias: bias,
                          relu: relu, into: target, tiling: .f4, smallGemm: smallGemm, workspace: workspace)
    }

    /// Adds the weight gradient of `convolve` to `kernelGradient` (HWIO) and, when given, the sum
    /// of `gradient` to `biasGradient`: `Winograd.weightGradient` with 36 GEMMs per chunk of tiles
    /// and F(4x4, 3x3)'s transforms (`dM_t = A dY_t Aᵀ` with A 6x4, `dW = Gᵀ dU G` with G 6x3).
    static func weightGradient(_ source: UnsafePointer<Float>, gradient: UnsafePointer<Float>, n: Int, h: Int, w: Int,
                               cin: Int, cout: Int, kernelGradient: UnsafeMutablePointer<Float>,
                               biasGradient: UnsafeMutablePointer<Float>?, workspace: Workspace) {
        Winograd.weightGradient(source, gradient: gradient, n: n, h: h, w: w, cin: cin, cout: cout, kernelGradient: kernelGradient,
                                biasGradient: biasGradient, tiling: .f4, workspace: workspace)
    }
}
