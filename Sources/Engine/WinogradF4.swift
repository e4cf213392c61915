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
/// (Keras values, 1e-4) pass with it.
///
/// Tiles are 4x4 output pixels, so an 8x8 image has only 4 tiles per image and the 36 GEMMs get
/// short; `EngineChoices` uses it only on images of at least `f4MinimumSide` pixels.
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
                         relu: Bool, into target: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let (th, tw) = ((h + 3) / 4, (w + 3) / 4)
        let tiles = n * th * tw
        let parts = Parallel.parts(rows: tiles, minimumPerPart: 16)
        let perTile = tileElements * max(cs, ct)
        let chunk = max(1, min((tiles + parts - 1) / parts, max(workspace.capacityFloats / perTile, workspace.minimumRows / 4)))
        let vBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: tileElements * chunk * cs)) }
        let mBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: tileElements * chunk * ct)) }
        let (src, weights, dst) = (SendablePointer(source), SendablePointer(matrices), SendablePointer(target))
        let biasPointer = bias.map { SendablePointer($0) }
        let zeroRow = UnsafeMutablePointer<Float>.allocate(capacity: cs)
        zeroRow.initialize(repeating: 0, count: cs)
        defer { zeroRow.deallocate() }
        let zeros = SendablePointer(UnsafePointer(zeroRow))
        Parallel.forEach(parts) { part in
            let v = vBuffers[part].pointer, m = mBuffers[part].pointer
            let range = Parallel.slice(tiles, parts: parts, part)
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: 36) { d in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: 16) { y in
                var t0 = range.lowerBound
                while t0 < range.upperBound {
                    let count = min(chunk, range.upperBound - t0)
                    for t in 0..<count {
                        let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                        let base = src.pointer + image * h * w * cs
                        for i in 0..<6 {
                            let yy = 4 * ty - 1 + i
                            for j in 0..<6 {
                                let xx = 4 * tx - 1 + j
                                let inside = yy >= 0 && yy < h && xx >= 0 && xx < w
                                let pixel: UnsafePointer<Float> = inside ? UnsafePointer(base + (yy * w + xx) * cs) : UnsafePointer(zeros.pointer)
                                d[i * 6 + j] = pixel
                            }
                        }
                        ckernels_winograd_f4_input_tile(d.baseAddress!, cs, v + t * cs, chunk * cs)
                    }
                    for xi in 0..<tileElements {
                        BLAS.gemm(inPartOf: parts, m: count, n: ct, k: cs, a: v + xi * chunk * cs, lda: cs,
                                  b: weights.pointer + xi * cs * ct, ldb: ct, beta: 0, c: m + xi * chunk * ct, ldc: ct)
                    }
                    for t in 0..<count {
                        let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                        let base = dst.pointer + image * h * w * ct
                        for i in 0..<4 {
                            let yy = 4 * ty + i
                            for j in 0..<4 {
                                let xx = 4 * tx + j
                                y[i * 4 + j] = yy < h && xx < w ? base + (yy * w + xx) * ct : nil
                            }
                        }
                        ckernels_winograd_f4_output_tile(m + t * ct, chunk * ct, ct, biasPointer?.pointer, relu ? 1 : 0, y.baseAddress!)
                    }
                    t0 += count
                }
            }
            }
        }
    }
}
