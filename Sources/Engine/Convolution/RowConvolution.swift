/// The "same", stride-1 convolution of NHWC tensors by im2col along the kernel's width, one GEMM,
/// and a col2im-style sum along its height.
///
/// Plain im2col copies `kh*kw*cin` floats per output pixel and multiplies by a `(kh*kw*cin) x cout`
/// matrix. With the U-Net's narrow layers (cout 16 or 32) that GEMM has only 16-32 columns, where
/// OpenBLAS reaches 85-110 GFLOP/s per core. Here each pixel's row holds only the `kw` taps of one
/// image row (`kw*cin` floats, one contiguous copy in NHWC), and the GEMM produces, for every
/// source row, its contribution to each of the `kh` output rows it feeds:
///
///     Z[(y', x), (ky, co)] = sum over (kx, ci) of X[y', x + kx - pw, ci] * W[ky, kx, ci, co]
///     Y[y, x, co]          = bias[co] + sum over ky of Z[(y + ky - ph, x), (ky, co)]
///
/// The same multiply-adds, but the GEMM is `(kw*cin) x (kh*cout)`: three times wider and a third
/// as deep, where OpenBLAS runs 20-40% faster (measured per shape with `ranksweep bench engine
/// --layers`), and the columns are a third of the size. The weight gradient is the transposed
/// product, `dW' = H^T V`, with V holding each pixel's `kh` output-gradient rows.
///
/// Work is split by image rows, one contiguous range per thread; a range computes the few source
/// rows around its edges it needs (no two threads write the same output), and works through
/// them in bands that fit the workspace. Each output row adds its `kh` contributions in the same
/// order whatever the split, so the forward pass does not depend on the thread count.
enum RowConvolution {
    /// The GEMM's right operand `[(kx, cin), (ky, cout)]` from an HWIO kernel `(kh, kw, cin, cout)`,
    /// each output channel multiplied by `columnScale` when given (a folded BatchNorm).
    static func matrix(_ kernel: UnsafePointer<Float>, kh: Int, kw: Int, cin: Int, cout: Int,
                       columnScale: [Float]? = nil) -> [Float] {
        [Float](unsafeUninitializedCapacity: kh * kw * cin * cout) { out, count in
            let base = out.baseAddress!
            (columnScale ?? []).withUnsafeBufferPointer { sb in
                let scale = UnsafeMutablePointer(mutating: sb.baseAddress)
                for ky in 0..<kh { for kx in 0..<kw { for ci in 0..<cin {
                    // cout contiguous floats on both sides.
                    let src = UnsafeMutablePointer(mutating: kernel + ((ky * kw + kx) * cin + ci) * cout)
                    let dst = base + ((kx * cin + ci) * kh + ky) * cout
                    guard columnScale != nil, let scale else { dst.initialize(from: src, count: cout); continue }
                    var co = 0
                    while co + 8 <= cout { dst.store8(src.load8(co) * scale.load8(co), co); co += 8 }
                    while co < cout { dst[co] = src[co] * scale[co]; co += 1 }
                } } }
            }
            count = kh * kw * cin * cout
        }
    }

    /// The matrix for the input gradient, `C[(ky, cout), (kx, cin)] = W[ky, kx, cin, cout]`
    /// (see `backward`).
    static func gradientMatrix(_ kernel: UnsafePointer<Float>, kh: Int, kw: Int, cin: Int, cout: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: kh * kw * cin * cout) { out, count in
            let base = out.baseAddress!
            for ky in 0..<kh { for kx in 0..<kw {
                // A (cin x cout) block transposed into (cout x cin).
                let src = kernel + (ky * kw + kx) * cin * cout
                for co in 0..<cout {
                    let dst = base + (ky * cout + co) * kw * cin + kx * cin
                    for ci in 0..<cin { (dst + ci).initialize(to: src[ci * cout + co]) }
                }
            } }
            count = kh * kw * cin * cout
        }
    }

    /// Parts (one per thread, each at least 128 output pixels) and the image rows of each.
    static func parts(imageRows: Int, width: Int) -> Int {
        min(imageRows, Parallel.parts(rows: imageRows * width, minimumPerPart: 128))
    }

    /// Image rows per GEMM: as many as fit the workspace, but at least `workspace.minimumRows`
    /// pixels' worth (unet-paper's bottleneck, 16-pixel rows at 1024 channels, trained 20-30% faster
    /// with 512-pixel GEMMs than with one row per GEMM).
    static func band(width: Int, floatsPerRow: Int, workspace: Workspace) -> Int {
        max(workspace.capacityFloats / max(1, floatsPerRow), (workspace.minimumRows + width - 1) / width, 1)
    }

    /// `target (n, h, w, ct) = conv(source (n, h, w, cs), matrix) (+ bias)`, with `matrix` from
    /// `matrix(...)`. Every element of the target is written.
    static func convolve(_ source: UnsafePointer<Float>, n: Int, h: Int, w: Int, sourceChannels cs: Int,
                         kh: Int, kw: Int, matrix: UnsafePointer<Float>, targetChannels ct: Int,
                         bias: UnsafePointer<Float>?, relu: Bool = false, into target: UnsafeMutablePointer<Float>,
                         workspace: Workspace) {
        let ph = (kh - 1) / 2
        let imageRows = n * h
        let parts = parts(imageRows: imageRows, width: w)
        let hLength = w * kw * cs, zLength = w * kh * ct      // floats per image row of H and of Z
        let band = band(width: w, floatsPerRow: hLength + zLength, workspace: workspace)
        let hBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: band * hLength)) }
        let zBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: band * zLength)) }
        let (src, weights, dst) = (SendablePointer(source), SendablePointer(matrix), SendablePointer(target))
        let biasPointer = bias.map { SendablePointer($0) }
        Parallel.forEach(parts) { part in
            let columns = hBuffers[part].pointer, z = zBuffers[part].pointer
            let rows = Parallel.slice(imageRows, parts: parts, part)
            // The source rows the part's output rows need: its own and `ph` more at each end of
            // each image's stretch (global row numbers, in order; a band may span images).
            var sources: [Int] = []
            var r = rows.lowerBound
            while r < rows.upperBound {
                let image = r / h, y0 = r - image * h, y1 = min(h, rows.upperBound - image * h)
                sources += (image * h + max(0, y0 - ph))..<(image * h + min(h, y1 + ph))
                r = image * h + y1
            }
            var first = 0
            while first < sources.count {
                let chunk = sources[first..<min(sources.count, first + band)]
                // The rows of a band are consecutive (a part's sources are one stretch). A kx1
                // kernel's columns are the rows themselves, and a 1xk kernel's product is its
                // output: no copy in, no copy out (spatial SVD's two halves).
                let consecutive = chunk.last! - chunk.first! == chunk.count - 1
                let a: UnsafePointer<Float>
                if kw == 1 && consecutive {
                    a = UnsafePointer(src.pointer + chunk.first! * w * cs)
                } else {
                    for (j, row) in chunk.enumerated() {
                        rowColumns(src.pointer + row * w * cs, width: w, channels: cs, kw: kw, into: columns + j * hLength)
                    }
                    a = UnsafePointer(columns)
                }
                if kh == 1 && consecutive {
                    let out = dst.pointer + chunk.first! * w * ct, pixels = chunk.count * w
                    if let biasPointer { for p in 0..<pixels { (out + p * ct).update(from: biasPointer.pointer, count: ct) } }
                    BLAS.gemm(inPartOf: parts, m: pixels, n: ct, k: kw * cs, a: a, lda: kw * cs,
                              b: weights.pointer, ldb: ct, beta: biasPointer == nil ? 0 : 1, c: out, ldc: ct)
                    if relu { clamp(out, count: pixels * ct) }
                    first += chunk.count
                    continue
                }
                BLAS.gemm(inPartOf: parts, m: chunk.count * w, n: kh * ct, k: kw * cs, a: a, lda: kw * cs,
                        b: weights.pointer, ldb: kh * ct, beta: 0, c: z, ldc: kh * ct)
                // Source row sy feeds output row sy - ky + ph (same image) through tap row ky. An
                // output row's first source, max(0, y - ph), starts it from the bias (or zero); the
                // others add to it. Every row has its centre tap, so every row is written.
                for (j, row) in chunk.enumerated() {
                    let image = row / h, sy = row - image * h
                    for ky in 0..<kh {
                        let y = sy - ky + ph
                        guard y >= 0 && y < h && rows.contains(image * h + y) else { continue }
                        let from = z + j * zLength + ky * ct, to = dst.pointer + (image * h + y) * w * ct
                        if sy == max(0, y - ph) {
                            storeStrided(from, stride: kh * ct, adding: biasPointer?.pointer, into: to, pixels: w, channels: ct)
                        } else {
                            addStrided(from, stride: kh * ct, into: to, pixels: w, channels: ct)
                        }
                        // The row's last source completes it: apply the ReLU while it is in cache.
                        if relu && sy == min(h - 1, y + ph) { clamp(to, count: w * ct) }
                    }
                }
                first += chunk.count
            }
        }
    }

    /// Backward in one pass over the image rows, each band building H (the input's row columns)
    /// and V (each pixel's `kh` output-gradient rows, `V[(y, x), (ky, co)] = dY[y - ky + ph, x, co]`):
    ///
    ///     dW' [(kx, cin), (ky, cout)] += H^T V
    ///     Z   [(y, x), (kx, ci)]       = V C           with C from `gradientMatrix`
    ///     dX  [y, x, ci]               = sum over kx of Z[(y, x - kx + pw), (kx, ci)]
    ///
    /// so dX needs no columns of its own and no rows beyond the band. `dW'` and the bias gradient
    /// go to one partial per part (returned in part order; the caller adds them in that order).
    static func backward(_ source: UnsafePointer<Float>, gradient: UnsafePointer<Float>, n: Int, h: Int, w: Int,
                         cin: Int, cout: Int, kh: Int, kw: Int, gradientMatrix: UnsafePointer<Float>,
                         inputGradient: UnsafeMutablePointer<Float>?, workspace: Workspace) -> [SendablePointer<Float>] {
        let (ph, pw) = ((kh - 1) / 2, (kw - 1) / 2)
        let imageRows = n * h
        let parts = parts(imageRows: imageRows, width: w)
        let hLength = w * kw * cin, vLength = w * kh * cout, zLength = inputGradient == nil ? 0 : w * kw * cin
        let band = band(width: w, floatsPerRow: hLength + vLength + zLength, workspace: workspace)
        let hBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: band * hLength)) }
        let vBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.gradientColumns, part: $0, count: band * vLength)) }
        let zBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: max(1, band * zLength))) }
        let partialLength = kw * cin * kh * cout + cout
        let partials = workspace.zeroedPartials(parts: parts, count: partialLength)
        let (src, grad, matrix) = (SendablePointer(source), SendablePointer(gradient), SendablePointer(gradientMatrix))
        let dX = inputGradient.map { SendablePointer($0) }
        Parallel.forEach(parts) { part in
            let columns = hBuffers[part].pointer, v = vBuffers[part].pointer, z = zBuffers[part].pointer
            let dW = partials[part].pointer, dB = dW + kw * cin * kh * cout
            // Each image row belongs to exactly one part; a band may span images.
            let rows = Parallel.slice(imageRows, parts: parts, part)
            addRows(grad.pointer + rows.lowerBound * w * cout, pixels: rows.count * w, channels: cout, into: dB)
            var r0 = rows.lowerBound
            while r0 < rows.upperBound {
                let r1 = min(rows.upperBound, r0 + band), m = (r1 - r0) * w
                for row in r0..<r1 {
                    let image = row / h, sy = row - image * h
                    rowColumns(src.pointer + row * w * cin, width: w, channels: cin, kw: kw, into: columns + (row - r0) * hLength)
                    let vRow = v + (row - r0) * vLength
                    for ky in 0..<kh {
                        let y = sy - ky + ph
                        if y >= 0 && y < h {
                            copyStrided(grad.pointer + (image * h + y) * w * cout, into: vRow + ky * cout, stride: kh * cout,
                                        pixels: w, channels: cout)
                        } else {
                            for x in 0..<w { (vRow + x * kh * cout + ky * cout).update(repeating: 0, count: cout) }
                        }
                    }
                }
                BLAS.gemm(inPartOf: parts, transA: true, m: kw * cin, n: kh * cout, k: m, a: columns, lda: kw * cin,
                        b: v, ldb: kh * cout, beta: 1, c: dW, ldc: kh * cout)
                if let dX {
                    BLAS.gemm(inPartOf: parts, m: m, n: kw * cin, k: kh * cout, a: v, lda: kh * cout,
                            b: matrix.pointer, ldb: kw * cin, beta: 0, c: z, ldc: kw * cin)
                    for row in r0..<r1 {
                        gatherRow(z + (row - r0) * zLength, width: w, channels: cin, kw: kw, pw: pw,
                                  into: dX.pointer + row * w * cin)
                    }
                }
                r0 = r1
            }
        }
        return partials
    }

    /// `out[x, :] = sum over kx of z[(x - kx + pw), (kx, :)]` for one image row, the first valid
    /// term stored and the rest added (every element written, in a fixed order).
    @inline(__always)
    private static func gatherRow(_ z: UnsafeMutablePointer<Float>, width w: Int, channels c: Int, kw: Int, pw: Int,
                                  into out: UnsafeMutablePointer<Float>) {
        let stride = kw * c
        for x in 0..<w {
            let dst = out + x * c
            var first = true
            for kx in 0..<kw {
                let sx = x - kx + pw
                guard sx >= 0 && sx < w else { continue }
                let src = z + sx * stride + kx * c
                var i = 0
                if first {
                    dst.update(from: src, count: c)
                    first = false
                    continue
                }
                while i + 8 <= c { dst.store8(dst.load8(i) + src.load8(i), i); i += 8 }
                while i < c { dst[i] += src[i]; i += 1 }
            }
            if first { dst.update(repeating: 0, count: c) }
        }
    }

    /// Adds `dW'` partials (layout `[(kx, cin), (ky, cout)]`) into an HWIO gradient, in part order.
    static func accumulate(_ partials: [SendablePointer<Float>], into gradient: UnsafeMutablePointer<Float>,
                           kh: Int, kw: Int, cin: Int, cout: Int) {
        for partial in partials {
            for ky in 0..<kh { for kx in 0..<kw { for ci in 0..<cin {
                let dst = gradient + ((ky * kw + kx) * cin + ci) * cout
                let src = partial.pointer + ((kx * cin + ci) * kh + ky) * cout
                for co in 0..<cout { dst[co] += src[co] }
            } } }
        }
    }

    /// One image row's columns: for each pixel x, the `kw` taps `x - pw ... x + pw` of `channels`
    /// floats each (zero beyond the row's ends); interior pixels are one contiguous copy.
    @inline(__always)
    private static func rowColumns(_ row: UnsafePointer<Float>, width w: Int, channels c: Int, kw: Int,
                                   into out: UnsafeMutablePointer<Float>) {
        let pw = (kw - 1) / 2
        let length = kw * c
        for x in 0..<w {
            let dst = out + x * length
            let sx0 = x - pw
            if sx0 >= 0 && sx0 + kw <= w {
                dst.update(from: row + sx0 * c, count: length)
                continue
            }
            for kx in 0..<kw {
                let sx = sx0 + kx
                if sx < 0 || sx >= w {
                    (dst + kx * c).update(repeating: 0, count: c)
                } else {
                    (dst + kx * c).update(from: row + sx * c, count: c)
                }
            }
        }
    }

    /// `out[x, 0..<c] += z[x * stride + 0..<c]` for `pixels` pixels.
    @inline(__always)
    private static func addStrided(_ z: UnsafeMutablePointer<Float>, stride: Int, into out: UnsafeMutablePointer<Float>,
                                   pixels: Int, channels c: Int) {
        for x in 0..<pixels {
            let src = z + x * stride, dst = out + x * c
            var i = 0
            while i + 8 <= c { dst.store8(dst.load8(i) + src.load8(i), i); i += 8 }
            while i < c { dst[i] += src[i]; i += 1 }
        }
    }

    /// `values[0..<count] = max(values, 0)`.
    @inline(__always)
    static func clamp(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { let v = values.load8(i); values.store8(v.replacing(with: 0, where: v .< 0), i); i += 8 }
        while i < count { values[i] = max(values[i], 0); i += 1 }
    }

    /// `out[x, 0..<c] = z[x * stride + 0..<c] (+ bias[0..<c])` for `pixels` pixels.
    @inline(__always)
    private static func storeStrided(_ z: UnsafeMutablePointer<Float>, stride: Int, adding bias: UnsafeMutablePointer<Float>?,
                                     into out: UnsafeMutablePointer<Float>, pixels: Int, channels c: Int) {
        guard let bias else {
            for x in 0..<pixels { (out + x * c).update(from: z + x * stride, count: c) }
            return
        }
        for x in 0..<pixels {
            let src = z + x * stride, dst = out + x * c
            var i = 0
            while i + 8 <= c { dst.store8(src.load8(i) + bias.load8(i), i); i += 8 }
            while i < c { dst[i] = src[i] + bias[i]; i += 1 }
        }
    }

    /// `out[x * stride + 0..<c] = row[x, 0..<c]` for `pixels` pixels.
    @inline(__always)
    private static func copyStrided(_ row: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, stride: Int,
                                    pixels: Int, channels c: Int) {
        for x in 0..<pixels { (out + x * stride).update(from: row + x * c, count: c) }
    }

    /// `sums[0..<c] += rows[p, 0..<c]` over `pixels` rows.
    @inline(__always)
    private static func addRows(_ rows: UnsafePointer<Float>, pixels: Int, channels c: Int, into sums: UnsafeMutablePointer<Float>) {
        for p in 0..<pixels {
            let row = UnsafeMutablePointer(mutating: rows + p * c)
            var i = 0
            while i + 8 <= c { sums.store8(sums.load8(i) + row.load8(i), i); i += 8 }
            while i < c { sums[i] += row[i]; i += 1 }
        }
    }
}
