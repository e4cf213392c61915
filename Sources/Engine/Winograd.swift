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
/// eight channels at a time while the tile is in cache.
///
/// Numerical error: the transforms add and subtract up to 9 products per output where the direct
/// sum has 9 as well, but of transformed (larger) terms; against the direct float32 result the
/// error stays within a few units of float32 rounding of the output's scale — measured at most
/// 2e-6 relative to the largest output over random layers of 32-256 channels
/// (`WinogradTests.testMatchesDirectConvolutionWithinBound`, which asserts 1e-5). F(4x4, 3x3)
/// would cut 4x but its transforms grow the error by about 10x more; it is not used.
///
/// Work is split by tiles across threads and done in chunks that bound the scratch memory; each
/// tile's outputs are computed by the same GEMM rows in the same order whatever the split, so the
/// result does not depend on the thread count.
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
        let (inputs, outputs) = forInputGradient ? (cout, cin) : (cin, cout)
        let plane = inputs * outputs
        return [Float](unsafeUninitializedCapacity: tileElements * plane) { out, count in
            let u = out.baseAddress!
            var g = [Float](repeating: 0, count: 9)
            for a in 0..<inputs {
                for b in 0..<outputs {
                    for ky in 0..<3 { for kx in 0..<3 {
                        g[ky * 3 + kx] = forInputGradient
                            ? kernel[(((2 - ky) * 3 + (2 - kx)) * cin + b) * cout + a]
                            : kernel[((ky * 3 + kx) * cin + a) * cout + b]
                    } }
                    let scale = columnScale?[b] ?? 1
                    // G g: 4x3, rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2; then (G g) Gᵀ the same on columns.
                    var rows = [Float](repeating: 0, count: 12)
                    for kx in 0..<3 {
                        let (g0, g1, g2) = (g[kx], g[3 + kx], g[6 + kx])
                        rows[kx] = g0
                        rows[3 + kx] = 0.5 * (g0 + g1 + g2)
                        rows[6 + kx] = 0.5 * (g0 - g1 + g2)
                        rows[9 + kx] = g2
                    }
                    for i in 0..<4 {
                        let (r0, r1, r2) = (rows[i * 3], rows[i * 3 + 1], rows[i * 3 + 2])
                        let values = [r0, 0.5 * (r0 + r1 + r2), 0.5 * (r0 - r1 + r2), r2]
                        for j in 0..<4 { (u + (i * 4 + j) * plane + a * outputs + b).initialize(to: scale * values[j]) }
                    }
                }
            }
            count = tileElements * plane
        }
    }

    /// Tiles per GEMM: as many as fit the workspace, but at least `workspace.minimumRows / 2`
    /// (a GEMM over few rows spends its time packing the transformed kernel).
    static func chunk(tiles: Int, channels: Int, workspace: Workspace) -> Int {
        let perTile = tileElements * channels
        return max(1, min(tiles, max(workspace.capacityFloats / max(1, perTile), workspace.minimumRows / 2)))
    }

    /// `target (n, h, w, ct) = conv3x3(source (n, h, w, cs))` with `matrices` from `kernelMatrices`,
    /// plus `bias`, optionally followed by a ReLU. Every element of the target is written.
    static func convolve(_ source: UnsafePointer<Float>, n: Int, h: Int, w: Int, sourceChannels cs: Int,
                         matrices: UnsafePointer<Float>, targetChannels ct: Int, bias: UnsafePointer<Float>?,
                         relu: Bool, into target: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let (th, tw) = ((h + 1) / 2, (w + 1) / 2)
        let tiles = n * th * tw
        let parts = Parallel.parts(rows: tiles, minimumPerPart: 32)
        let chunk = chunk(tiles: (tiles + parts - 1) / parts, channels: max(cs, ct), workspace: workspace)
        let vBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: tileElements * chunk * cs)) }
        let mBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: tileElements * chunk * ct)) }
        let (src, weights, dst) = (SendablePointer(source), SendablePointer(matrices), SendablePointer(target))
        let biasPointer = bias.map { SendablePointer($0) }
        Parallel.forEach(parts) { part in
            let v = vBuffers[part].pointer, m = mBuffers[part].pointer
            let range = Parallel.slice(tiles, parts: parts, part)
            var t0 = range.lowerBound
            while t0 < range.upperBound {
                let count = min(chunk, range.upperBound - t0)
                for t in 0..<count {
                    let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                    inputTile(src.pointer + image * h * w * cs, h: h, w: w, channels: cs, y0: 2 * ty - 1, x0: 2 * tx - 1,
                              into: v + t * cs, stride: chunk * cs)
                }
                for xi in 0..<tileElements {
                    BLAS.gemm(inPartOf: parts, m: count, n: ct, k: cs, a: v + xi * chunk * cs, lda: cs,
                              b: weights.pointer + xi * cs * ct, ldb: ct, beta: 0, c: m + xi * chunk * ct, ldc: ct)
                }
                for t in 0..<count {
                    let tile = t0 + t, image = tile / (th * tw), ty = tile % (th * tw) / tw, tx = tile % tw
                    outputTile(m + t * ct, stride: chunk * ct, channels: ct, bias: biasPointer?.pointer, relu: relu,
                               into: dst.pointer + image * h * w * ct, h: h, w: w, y0: 2 * ty, x0: 2 * tx)
                }
                t0 += count
            }
        }
    }

    /// `Bᵀ d B` of the 4x4 input block at `(y0, x0)` (zeros outside the image), element ξ of every
    /// channel to `out + ξ * stride`: eight channels at a time, then one at a time.
    @inline(__always)
    private static func inputTile(_ image: UnsafePointer<Float>, h: Int, w: Int, channels c: Int, y0: Int, x0: Int,
                                  into out: UnsafeMutablePointer<Float>, stride: Int) {
        let base = UnsafeMutablePointer(mutating: image)
        // y0, x0 >= -1: only the first row and column can lie before the image.
        let rows = (y0 >= 0, y0 + 1 < h, y0 + 2 < h, y0 + 3 < h)
        let cols = (x0 >= 0, x0 + 1 < w, x0 + 2 < w, x0 + 3 < w)
        let interior = rows.0 && rows.3 && cols.0 && cols.3
        let offset = (y0 * w + x0) * c
        var ch = 0
        while ch + 8 <= c {
            inputLanes(Float8.self, base, offset + ch, rowStride: w * c, pixelStride: c, rows: rows, cols: cols, interior: interior,
                       into: out + ch, stride: stride)
            ch += 8
        }
        while ch < c {
            inputLanes(Float.self, base, offset + ch, rowStride: w * c, pixelStride: c, rows: rows, cols: cols, interior: interior,
                       into: out + ch, stride: stride)
            ch += 1
        }
    }

    @inline(__always)
    private static func inputLanes<L: WinogradLane>(_: L.Type, _ base: UnsafeMutablePointer<Float>, _ origin: Int, rowStride: Int,
                                                    pixelStride: Int, rows: (Bool, Bool, Bool, Bool), cols: (Bool, Bool, Bool, Bool),
                                                    interior: Bool, into out: UnsafeMutablePointer<Float>, stride: Int) {
        @inline(__always) func load(_ i: Int, _ j: Int) -> L {
            if !interior {
                let r = i == 0 ? rows.0 : i == 1 ? rows.1 : i == 2 ? rows.2 : rows.3
                let k = j == 0 ? cols.0 : j == 1 ? cols.1 : j == 2 ? cols.2 : cols.3
                guard r && k else { return .zero }
            }
            return L.load(base, origin + i * rowStride + j * pixelStride)
        }
        let d00 = load(0, 0), d01 = load(0, 1), d02 = load(0, 2), d03 = load(0, 3)
        let d10 = load(1, 0), d11 = load(1, 1), d12 = load(1, 2), d13 = load(1, 3)
        let d20 = load(2, 0), d21 = load(2, 1), d22 = load(2, 2), d23 = load(2, 3)
        let d30 = load(3, 0), d31 = load(3, 1), d32 = load(3, 2), d33 = load(3, 3)
        // Rows: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3 (each a row of 4).
        let t00 = d00 - d20, t01 = d01 - d21, t02 = d02 - d22, t03 = d03 - d23
        let t10 = d10 + d20, t11 = d11 + d21, t12 = d12 + d22, t13 = d13 + d23
        let t20 = d20 - d10, t21 = d21 - d11, t22 = d22 - d12, t23 = d23 - d13
        let t30 = d10 - d30, t31 = d11 - d31, t32 = d12 - d32, t33 = d13 - d33
        // Columns, the same on each row.
        @inline(__always) func columns(_ row: Int, _ a: L, _ b: L, _ cc: L, _ d: L) {
            (a - cc).store(out, (row * 4) * stride)
            (b + cc).store(out, (row * 4 + 1) * stride)
            (cc - b).store(out, (row * 4 + 2) * stride)
            (b - d).store(out, (row * 4 + 3) * stride)
        }
        columns(0, t00, t01, t02, t03)
        columns(1, t10, t11, t12, t13)
        columns(2, t20, t21, t22, t23)
        columns(3, t30, t31, t32, t33)
    }

    /// `Aᵀ m A` (+ bias, ReLU) of one tile, element ξ of every channel read from `m + ξ * stride`,
    /// written to the tile's 2x2 output pixels that lie inside the image.
    @inline(__always)
    private static func outputTile(_ m: UnsafeMutablePointer<Float>, stride: Int, channels c: Int,
                                   bias: UnsafeMutablePointer<Float>?, relu: Bool,
                                   into image: UnsafeMutablePointer<Float>, h: Int, w: Int, y0: Int, x0: Int) {
        let (bottom, right) = (y0 + 1 < h, x0 + 1 < w)
        let target = image + (y0 * w + x0) * c
        var ch = 0
        while ch + 8 <= c {
            outputLanes(Float8.self, m + ch, stride: stride, bias: bias.map { $0 + ch }, relu: relu, into: target + ch,
                        rowStride: w * c, pixelStride: c, bottom: bottom, right: right)
            ch += 8
        }
        while ch < c {
            outputLanes(Float.self, m + ch, stride: stride, bias: bias.map { $0 + ch }, relu: relu, into: target + ch,
                        rowStride: w * c, pixelStride: c, bottom: bottom, right: right)
            ch += 1
        }
    }

    @inline(__always)
    private static func outputLanes<L: WinogradLane>(_: L.Type, _ m: UnsafeMutablePointer<Float>, stride: Int,
                                                     bias: UnsafeMutablePointer<Float>?, relu: Bool, into out: UnsafeMutablePointer<Float>,
                                                     rowStride: Int, pixelStride: Int, bottom: Bool, right: Bool) {
        @inline(__always) func at(_ i: Int, _ j: Int) -> L { L.load(m, (i * 4 + j) * stride) }
        // Rows: o0 = m0 + m1 + m2, o1 = m1 - m2 - m3; then the same on the columns.
        let o00 = at(0, 0) + at(1, 0) + at(2, 0), o10 = at(1, 0) - at(2, 0) - at(3, 0)
        let o01 = at(0, 1) + at(1, 1) + at(2, 1), o11 = at(1, 1) - at(2, 1) - at(3, 1)
        let o02 = at(0, 2) + at(1, 2) + at(2, 2), o12 = at(1, 2) - at(2, 2) - at(3, 2)
        let o03 = at(0, 3) + at(1, 3) + at(2, 3), o13 = at(1, 3) - at(2, 3) - at(3, 3)
        let b = bias.map { L.load($0, 0) } ?? .zero
        var y00 = o00 + o01 + o02 + b, y01 = o01 - o02 - o03 + b
        var y10 = o10 + o11 + o12 + b, y11 = o11 - o12 - o13 + b
        if relu { y00 = y00.clampedAtZero; y01 = y01.clampedAtZero; y10 = y10.clampedAtZero; y11 = y11.clampedAtZero }
        y00.store(out, 0)
        if right { y01.store(out, pixelStride) }
        if bottom {
            y10.store(out, rowStride)
            if right { y11.store(out, rowStride + pixelStride) }
        }
    }
}

/// Eight channels (`Float8`) or one (`Float`): the transforms are written once for both.
protocol WinogradLane {
    static var zero: Self { get }
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func load(_ p: UnsafeMutablePointer<Float>, _ offset: Int) -> Self
    func store(_ p: UnsafeMutablePointer<Float>, _ offset: Int)
    var clampedAtZero: Self { get }
}

extension Float8: WinogradLane {
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>, _ offset: Int) -> Float8 { p.load8(offset) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ offset: Int) { p.store8(self, offset) }
    @inline(__always) var clampedAtZero: Float8 { replacing(with: 0, where: self .< 0) }
}

extension Float: WinogradLane {
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>, _ offset: Int) -> Float { p[offset] }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ offset: Int) { p[offset] = self }
    @inline(__always) var clampedAtZero: Float { Swift.max(self, 0) }
}
