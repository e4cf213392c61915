import CKernels

/// The "same" 3x3, stride-1 convolution of NHWC tensors by Winograd's minimal filtering F(2x2, 3x3):
/// each 2x2 block of output pixels ("tile") comes from a 4x4 block of input pixels with 16
/// multiplications per channel pair instead of 36, a 2.25x cut in the multiply-adds.
///
///     V[ξ][t, ci] = (Bᵀ d_t B)[ξ]        input tile t transformed, ξ = 0..<16
///     U[ξ][ci, co] = (G g G ᵀ)[ξ]        the kernel transformed (once per call)
///     M[ξ] = V[ξ] U[ξ]                   16 GEMMs of (tiles x cin) x (cin x cout), one `cblas_sgemm` each
///     Y_t = Aᵀ M_t A (+ bias, ReLU)      each tile's 2x2 outputs
///
/// so the engine stays BLAS-backed; the transforms are additions only (and halves in G), done
/// eight channels at a time while the tile is in cache, in C (CKernels): the same loops in Swift's
/// SIMD types took the optimiser most of the Engine module's 13-minute release build.
///
/// Numerical error: the transforms add and subtract up to 9 products per output where the direct
/// sum has 9 as well, but of transformed (larger) terms; against the direct float32 result the
/// error stays within a few units of float32 rounding of the output's scale — measured at most
/// 2e-6 relative to the largest output over random layers of 32-256 channels
/// (`WinogradTests.testMatchesDirectConvolutionWithinBound`, which asserts 1e-5). F(4x4, 3x3)
/// (`WinogradF4`) cuts 4x at about 10x the error; it takes over forward, the input gradient and
/// the weight gradient of the wide layers on larger images (see `EngineChoices`).
///
/// The weight gradient (`weightGradient`) runs in the same transform domain: 16 (F(4x4): 36) GEMMs
/// of (cin x tiles)(tiles x cout) on the recomputed input transforms and the lifted output gradients,
/// then one `Gᵀ dU G` per channel pair; the direct weight gradient would take 2.25x the
/// multiply-adds and a `kh`-times copy of dY. Against a float64 direct weight gradient its error
/// measured at most 4.2e-7 relative to the largest gradient element (1x1 to 16x16 images, odd
/// sides, 3-256 channels; `WinogradTests.testWeightGradientMatchesDirectWithinBound`, which asserts
/// 1e-5), the same order as the forward pass's.
///
/// Work is split by tiles across threads and done in chunks that bound the scratch memory; each
/// tile's outputs are computed by the same GEMM rows in the same order whatever the split, so the
/// convolution does not depend on the thread count (the weight gradient, a sum over tiles, does:
/// see there).
enum Winograd {
    /// Transformed input and output tile elements.
    static let tileElements = 16

    /// The 16 transformed kernels, `U[ξ][a, b]` for the convolution's input channel `a` and output
    /// channel `b`, from an HWIO 3x3 kernel `(3, 3, cin, cout)`.
    ///
    /// - forward: `a = ci`, `b = co`, each output channel multiplied by `columnScale` when given (a folded BatchNorm).
    /// - input gradient (`forInputGradient`): the kernel rotated by 180° with its channels swapped
    ///   (`a = co`, `b = ci`), so that dX is the same kind of convolution of dY.
    static func kernelMatrices(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int, columnScale: [Float]? = nil,
                               forInputGradient: Bool = false) -> [Float] {
        transformedKernel(kernel, cin: cin, cout: cout, columnScale: columnScale, forInputGradient: forInputGradient,
                          elements: tileElements, transform: ckernels_winograd_kernel)
    }

    /// A kernel transform in C: (kernel, inputs, outputs, scale, out, first input, last input).
    typealias KernelTransform = @convention(c) (UnsafePointer<Float>?, Int, Int, UnsafePointer<Float>?,
                                                UnsafeMutablePointer<Float>?, Int, Int) -> Void

    /// The `elements` transformed kernels by `transform` (F(2x2, 3x3)'s or F(4x4, 3x3)'s), split by
    /// input channels across threads: a serial transform of a 256x256 kernel kept the second
    /// thread waiting between layers.
    static func transformedKernel(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int, columnScale: [Float]?,
                                  forInputGradient: Bool, elements: Int, transform: KernelTransform) -> [Float] {
        let (inputs, outputs) = forInputGradient ? (cout, cin) : (cin, cout)
        let plane = inputs * outputs
        return [Float](unsafeUninitializedCapacity: elements * plane) { out, count in
            (columnScale ?? []).withUnsafeBufferPointer { scale in
                let scalePointer = columnScale == nil ? nil : scale.baseAddress.map { SendablePointer($0) }
                let target = SendablePointer(out.baseAddress!)
                let run = { (source: SendablePointer<Float>) in
                    Parallel.rows(inputs, minimumPerPart: max(1, (1 << 13) / outputs)) { range in
                        transform(source.pointer, inputs, outputs, scalePointer?.pointer, target.pointer, range.lowerBound, range.upperBound)
                    }
                }
                if forInputGradient {
                    let rotated = UnsafeMutablePointer<Float>.allocate(capacity: 9 * plane)
                    defer { rotated.deallocate() }
                    rotateSwap(kernel, cin: cin, cout: cout, into: rotated)
                    run(SendablePointer(rotated))
                } else {
                    run(SendablePointer(kernel))
                }
            }
            count = elements * plane
        }
    }

    /// The 3x3 kernel rotated by 180 degrees with its channels swapped (`ckernels_rotate_swap_3x3`),
    /// taps split across threads.
    static func rotateSwap(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int, into out: UnsafeMutablePointer<Float>) {
        let (source, target) = (SendablePointer(kernel), SendablePointer(out))
        Parallel.rows(9, minimumPerPart: cin * cout >= 1 << 13 ? 1 : 9) { range in
            ckernels_rotate_swap_3x3(source.pointer, cin, cout, target.pointer, range.lowerBound, range.upperBound)
        }
    }

    /// Tiles per GEMM: as many as fit the workspace, but at least `workspace.minimumRows / side`
    /// (a GEMM over few rows spends its time packing the transformed kernel).
    static func chunk(tiles: Int, channels: Int, tiling: Tiling = .f2, workspace: Workspace) -> Int {
        let perTile = tiling.elements * channels
        return max(1, min(tiles, max(workspace.capacityFloats / max(1, perTile), workspace.minimumRows / tiling.side)))
    }

    /// Tiles per weight-gradient GEMM: as many as the workspace holds, at most 64 and at least
    /// `minimumRows / 2` output pixels' worth. The chunk's transforms are then still in the core's
    /// cache when the GEMMs read them (Intel AVX-512, batch 8). F(2x2): with the forward pass's 256
    /// tiles instead of 64, layers of 64-128 channels took 1.2-1.35x the CPU time. F(4x4) (56 tiles
    /// at 32 + 32 channels, 28 at 64 + 64, 16 from 128 + 128): a fixed 24 or 64 measured even, a
    /// fixed 128 took 1.1x; at least `cin * cout / (cin + cout)` tiles (the transforms outweigh the
    /// partial dU the GEMMs add into) gained 3-7% at 128-256 channels and lost as much at 64.
    static func weightGradientChunk(tiles: Int, channels: Int, tiling: Tiling = .f2, workspace: Workspace) -> Int {
        let perTile = tiling.elements * channels
        let floor = workspace.minimumRows / (2 * tiling.side * tiling.side)
        return max(1, min(tiles, 64, max(workspace.capacityFloats / max(1, perTile), floor)))
    }

    /// `target (n, h, w, ct) = conv3x3(source (n, h, w, cs))` with `matrices` from `kernelMatrices`,
    /// plus `bias`, optionally followed by a ReLU. Every element of the target is written. The
    /// transform-domain products run by the small-GEMM kernel with `smallGemm` (`smallGemmISA`),
    /// by `cblas_sgemm` when nil.
    static func convolve(_ source: UnsafePointer<Float>, n: Int, h: Int, w: Int, sourceChannels cs: Int,
                         matrices: UnsafePointer<Float>, targetChannels ct: Int, bias: UnsafePointer<Float>?,
                         relu: Bool, into target: UnsafeMutablePointer<Float>, tiling: Tiling = .f2,
                         smallGemm: DirectConvolution.ISA?, workspace: Workspace) {
        let side = tiling.side, elements = tiling.elements
        let (th, tw) = ((h + side - 1) / side, (w + side - 1) / side)
        let tiles = n * th * tw
        let parts = Parallel.parts(rows: tiles, minimumPerPart: 64 / side)
        let chunk = chunk(tiles: (tiles + parts - 1) / parts, channels: max(cs, ct), tiling: tiling, workspace: workspace)
        let vBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: elements * chunk * cs)) }
        let mBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: elements * chunk * ct)) }
        let (src, weights, dst) = (SendablePointer(source), SendablePointer(matrices), SendablePointer(target))
        let biasPointer = bias.map { SendablePointer($0) }
        // Stands in for the pixels of a tile that lie outside the image.
        let zeroRow = UnsafeMutablePointer<Float>.allocate(capacity: cs)
        zeroRow.initialize(repeating: 0, count: cs)
        defer { zeroRow.deallocate() }
        let zeros = SendablePointer(UnsafePointer(zeroRow))
        Parallel.forEach(parts) { part in
            let v = vBuffers[part].pointer, m = mBuffers[part].pointer
            let range = Parallel.slice(tiles, parts: parts, part)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let count = min(chunk, range.upperBound - t0)
                for t in 0..<count {
                    let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                    inputTile(tiling, src.pointer + image * h * w * cs, h: h, w: w, channels: cs, y0: side * ty - 1,
                              x0: side * tx - 1, zeros: zeros.pointer, into: v + t * cs, stride: chunk * cs)
                }
                if let isa = smallGemm {
                    ckernels_winograd_small_gemm(isa.rawValue, v, chunk * cs, count, cs, weights.pointer, ct, m, chunk * ct, elements)
                } else {
                    for xi in 0..<elements {
                        BLAS.gemm(inPartOf: parts, m: count, n: ct, k: cs, a: v + xi * chunk * cs, lda: cs,
                                  b: weights.pointer + xi * cs * ct, ldb: ct, beta: 0, c: m + xi * chunk * ct, ldc: ct)
                    }
                }
                for t in 0..<count {
                    let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                    outputTile(tiling, m + t * ct, stride: chunk * ct, channels: ct, bias: biasPointer?.pointer, relu: relu,
                               into: dst.pointer + image * h * w * ct, h: h, w: w, y0: side * ty, x0: side * tx)
                }
                t0 += count
            }
        }
    }

    /// Whether this CPU runs the small-GEMM kernel's AVX-512 version (without it, `cblas_sgemm`:
    /// the kernel's plain C loses to OpenBLAS).
    static let smallGemmSupported = DirectConvolution.ISA.avx512.isSupported

    /// The instruction set `convolve` computes its products of `cs` x `ct` channels with by the
    /// small-GEMM kernel (`ckernels_winograd_small_gemm`: each output summed over `cs` in order,
    /// whatever the chunking, so the convolution is the same for every split), or nil for
    /// `cblas_sgemm`: up to `choices.winogradSmallGemmMaximumChannels` channels, `ct` a multiple of 16.
    static func smallGemmISA(sourceChannels cs: Int, targetChannels ct: Int, choices: EngineChoices) -> DirectConvolution.ISA? {
        guard smallGemmSupported, let maximum = choices.winogradSmallGemmMaximumChannels, max(cs, ct) <= maximum,
              ct > 0, ct % 16 == 0 else { return nil }
        return .avx512
    }

    /// Adds the weight gradient of `convolve` to `kernelGradient` (HWIO `(3, 3, cin, cout)`) and,
    /// when given, the sum of `gradient` to `biasGradient`, for `source (n, h, w, cin)` and its
    /// output gradient `gradient (n, h, w, cout)`, by `tiling` (F(2x2, 3x3), or F(4x4, 3x3) through
    /// `WinogradF4.weightGradient`). Forward is `Y_t = Aᵀ (U ⊙ V_t) A` with `U = G g Gᵀ`, so
    ///
    ///     dM_t = A dY_t Aᵀ                          each tile's 2x2 (4x4) output gradient lifted to 4x4 (6x6)
    ///     dU[ξ][ci, co] = Σ_t V_t[ξ][ci] dM_t[ξ][co]  16 (36) GEMMs (transposed A) of (cin x tiles)(tiles x cout)
    ///     dW = Gᵀ dU G                               once per channel pair, after all tiles
    ///
    /// `V_t` is the forward input transform, recomputed. Output pixels outside the image have a
    /// zero gradient. The bias gradient comes free: `dM_t[1][1]` is the sum of the tile's output
    /// gradients. Each part of the tiles sums into its own partial `dU` (and bias sum), and the
    /// partials are added in part order: deterministic for a given thread count and workspace.
    static func weightGradient(_ source: UnsafePointer<Float>, gradient: UnsafePointer<Float>, n: Int, h: Int, w: Int,
                               cin: Int, cout: Int, kernelGradient: UnsafeMutablePointer<Float>,
                               biasGradient: UnsafeMutablePointer<Float>?, tiling: Tiling = .f2, workspace: Workspace) {
        let side = tiling.side, elements = tiling.elements
        let (th, tw) = ((h + side - 1) / side, (w + side - 1) / side)
        let tiles = n * th * tw
        let parts = Parallel.parts(rows: tiles, minimumPerPart: 128 / (side * side))
        let chunk = weightGradientChunk(tiles: (tiles + parts - 1) / parts, channels: cin + cout, tiling: tiling, workspace: workspace)
        let plane = cin * cout
        let partials = workspace.zeroedPartials(parts: parts, count: elements * plane + cout)
        let vBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: elements * chunk * cin)) }
        let mBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.gradientColumns, part: $0, count: elements * chunk * cout)) }
        let (src, grad) = (SendablePointer(source), SendablePointer(gradient))
        // Stands in for the input pixels and output gradients of a tile that lie outside the image.
        let zeroRow = UnsafeMutablePointer<Float>.allocate(capacity: max(cin, cout))
        zeroRow.initialize(repeating: 0, count: max(cin, cout))
        defer { zeroRow.deallocate() }
        let zeros = SendablePointer(UnsafePointer(zeroRow))
        Parallel.forEach(parts) { part in
            let v = vBuffers[part].pointer, m = mBuffers[part].pointer
            let dU = partials[part].pointer, dB = dU + elements * plane
            let range = Parallel.slice(tiles, parts: parts, part)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let count = min(chunk, range.upperBound - t0)
                for t in 0..<count {
                    let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                    inputTile(tiling, src.pointer + image * h * w * cin, h: h, w: w, channels: cin, y0: side * ty - 1,
                              x0: side * tx - 1, zeros: zeros.pointer, into: v + t * cin, stride: chunk * cin)
                    outputGradientTile(tiling, grad.pointer + image * h * w * cout, h: h, w: w, channels: cout, y0: side * ty,
                                       x0: side * tx, zeros: zeros.pointer, into: m + t * cout, stride: chunk * cout)
                }
                for xi in 0..<elements {
                    BLAS.gemm(inPartOf: parts, transA: true, m: cin, n: cout, k: count, a: v + xi * chunk * cin, lda: cin,
                              b: m + xi * chunk * cout, ldb: cout, beta: 1, c: dU + xi * plane, ldc: cout)
                }
                let sums = m + tiling.sumElement * chunk * cout
                for t in 0..<count { add(sums + t * cout, into: dB, count: cout) }
                t0 += count
            }
        }
        // The parts' sums, then G^T dU G, split across threads by ranges of elements and of input
        // channels (each element still adds the parts in part order).
        let total = partials[0].pointer
        let (sums, dW, others) = (partials[0], SendablePointer(kernelGradient), Array(partials.dropFirst()))
        Parallel.rows(elements * plane + cout) { range in
            for p in others { add(p.pointer + range.lowerBound, into: sums.pointer + range.lowerBound, count: range.count) }
        }
        let kernelGradientTransform = tiling.kernelGradientTransform
        Parallel.rows(cin, minimumPerPart: max(1, (1 << 13) / cout)) { range in
            kernelGradientTransform(sums.pointer, cin, cout, dW.pointer, range.lowerBound, range.upperBound)
        }
        if let biasGradient { add(total + elements * plane, into: biasGradient, count: cout) }
    }

    /// `into[i] += values[i]` for `i < count`.
    @inline(__always)
    private static func add(_ values: UnsafeMutablePointer<Float>, into sums: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { sums.store8(sums.load8(i) + values.load8(i), i); i += 8 }
        while i < count { sums[i] += values[i]; i += 1 }
    }

    /// `A dY Aᵀ` of the tile whose output pixels start at `(y0, x0)` (`zeros` outside the image),
    /// element ξ of every channel to `out + ξ * stride` (the arithmetic is in C, like `inputTile`'s).
    @inline(__always)
    private static func outputGradientTile(_ tiling: Tiling, _ image: UnsafePointer<Float>, h: Int, w: Int, channels c: Int,
                                           y0: Int, x0: Int, zeros: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                           stride: Int) {
        let side = tiling.side
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: side * side) { p in
            for i in 0..<side {
                for j in 0..<side {
                    p[i * side + j] = y0 + i < h && x0 + j < w ? image + ((y0 + i) * w + x0 + j) * c : zeros
                }
            }
            tiling.outputGradientTransform(p.baseAddress!, c, out, stride)
        }
    }

    /// The input transform of the `(side + 2)`-pixel square block at `(y0, x0)` (`zeros` outside the
    /// image), element ξ of every channel to `out + ξ * stride` (the arithmetic is C: see CKernels).
    @inline(__always)
    static func inputTile(_ tiling: Tiling, _ image: UnsafePointer<Float>, h: Int, w: Int, channels c: Int, y0: Int, x0: Int,
                          zeros: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, stride: Int) {
        let block = tiling.side + 2
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: block * block) { d in
            for i in 0..<block {
                let y = y0 + i
                for j in 0..<block {
                    let x = x0 + j
                    let inside = y >= 0 && y < h && x >= 0 && x < w
                    d[i * block + j] = inside ? image + (y * w + x) * c : zeros
                }
            }
            tiling.inputTransform(d.baseAddress!, c, out, stride)
        }
    }

    /// The output transform (+ bias, ReLU) of one tile, element ξ of every channel read from
    /// `m + ξ * stride`, written to the tile's `side` x `side` output pixels that lie inside the image.
    @inline(__always)
    private static func outputTile(_ tiling: Tiling, _ m: UnsafeMutablePointer<Float>, stride: Int, channels c: Int,
                                   bias: UnsafeMutablePointer<Float>?, relu: Bool,
                                   into image: UnsafeMutablePointer<Float>, h: Int, w: Int, y0: Int, x0: Int) {
        let side = tiling.side
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: side * side) { y in
            for i in 0..<side {
                for j in 0..<side {
                    y[i * side + j] = y0 + i < h && x0 + j < w ? image + ((y0 + i) * w + x0 + j) * c : nil
                }
            }
            tiling.outputTransform(m, stride, c, bias, relu ? 1 : 0, y.baseAddress!)
        }
    }

    /// F(2x2, 3x3) or F(4x4, 3x3): output pixels per tile side, transformed elements per tile, the
    /// C transforms of a tile (forward: input, output; weight gradient: input, output gradient,
    /// kernel gradient).
    struct Tiling: Sendable {
        let side: Int
        var elements: Int { (side + 2) * (side + 2) }
        /// Element (1, 1) of `A dY Aᵀ`: the sum of the tile's output gradients (the bias gradient's term).
        var sumElement: Int { side + 3 }
        /// (pointers to the block's pixels, channels, out, stride).
        typealias TileTransform = @convention(c) (UnsafePointer<UnsafePointer<Float>?>?, Int, UnsafeMutablePointer<Float>?, Int) -> Void
        let inputTransform: TileTransform
        let outputTransform: @convention(c) (UnsafePointer<Float>?, Int, Int, UnsafePointer<Float>?, Int32,
                                             UnsafePointer<UnsafeMutablePointer<Float>?>?) -> Void
        let outputGradientTransform: TileTransform
        /// (dU, cin, cout, dW, first input channel, last).
        let kernelGradientTransform: @convention(c) (UnsafePointer<Float>?, Int, Int, UnsafeMutablePointer<Float>?, Int, Int) -> Void

        static let f2 = Tiling(side: 2, inputTransform: ckernels_winograd_input_tile, outputTransform: ckernels_winograd_output_tile,
                               outputGradientTransform: ckernels_winograd_output_gradient_tile,
                               kernelGradientTransform: ckernels_winograd_kernel_gradient)
        static let f4 = Tiling(side: 4, inputTransform: ckernels_winograd_f4_input_tile,
                               outputTransform: ckernels_winograd_f4_output_tile,
                               outputGradientTransform: ckernels_winograd_f4_output_gradient_tile,
                               kernelGradientTransform: ckernels_winograd_f4_kernel_gradient)
    }
}
