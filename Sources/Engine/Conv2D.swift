/// 2-D convolution, stride 1, "same" padding, by im2col + `cblas_sgemm`.
///
/// Input `x` is NHWC `(n, h, w, cin)`; the kernel is HWIO `(kh, kw, cin, cout)` and, read as a
/// `(kh*kw*cin) x cout` row-major matrix, is the GEMM's right operand with no copy. Output is
/// `(n, h, w, cout)`. Kernels are odd-sized; "same" pads `(k-1)/2` on each side, as Keras does.
/// A 1x1 convolution is a plain GEMM on the input, with no im2col.
///
/// Memory: the columns of one chunk of output pixels live in the model's `Workspace`, so a large
/// batch costs no more scratch than a small one. Backward recomputes the columns rather than
/// keeping them from forward (they are `kh*kw` times the input's size), and computes dX as a
/// convolution of dY with the rotated kernel (im2col + GEMM again) rather than a col2im scatter.
public final class Conv2D: ConvolutionLayer {
    public let name: String
    public let kernel: Parameter
    public let bias: Parameter?
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let inChannels: Int
    public let outChannels: Int
    public var workspace: Workspace
    /// See `ConvolutionLayer`; skipping dL/dx saves a third of the layer's backward work.
    public var inputGradientNeeded = true

    /// Kept by forward for backward: the input.
    private var input: Tensor?

    /// A convolution with the given HWIO kernel and optional bias `(cout)`.
    public init(name: String, kernel: Tensor, bias: Tensor?, workspace: Workspace = Workspace()) {
        precondition(kernel.rank == 4, "Conv2D \(name): kernel must be HWIO, got shape \(kernel.shape)")
        precondition(kernel.shape[0] % 2 == 1 && kernel.shape[1] % 2 == 1,
                     "Conv2D \(name): kernel must be odd-sized for same padding, got \(kernel.shape)")
        if let bias {
            precondition(bias.shape == [kernel.shape[3]],
                         "Conv2D \(name): bias shape \(bias.shape) does not match cout \(kernel.shape[3])")
        }
        self.name = name
        self.kernelHeight = kernel.shape[0]
        self.kernelWidth = kernel.shape[1]
        self.inChannels = kernel.shape[2]
        self.outChannels = kernel.shape[3]
        self.kernel = Parameter(name: "\(name).kernel", value: kernel)
        self.bias = bias.map { Parameter(name: "\(name).bias", value: $0) }
        self.workspace = workspace
    }

    /// A freshly initialised convolution (bias zero).
    public convenience init(name: String, kernelSize: Int, inChannels: Int, outChannels: Int,
                            useBias: Bool = true, initializer: Initializer, rng: inout SeededGenerator,
                            workspace: Workspace = Workspace()) {
        let fanIn = kernelSize * kernelSize * inChannels
        let fanOut = kernelSize * kernelSize * outChannels
        let k = initializer.make(shape: [kernelSize, kernelSize, inChannels, outChannels],
                                 fanIn: fanIn, fanOut: fanOut, rng: &rng)
        self.init(name: name, kernel: k, bias: useBias ? Tensor.zeros([outChannels]) : nil,
                  workspace: workspace)
    }

    public var parameters: [Parameter] { bias.map { [kernel, $0] } ?? [kernel] }

    public func flops(height: Int, width: Int) -> Int {
        2 * height * width * kernelHeight * kernelWidth * inChannels * outChannels
    }

    private var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 }
    private var columnLength: Int { kernelHeight * kernelWidth * inChannels }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inChannels,
                     "Conv2D \(name): expected NHWC input with \(inChannels) channels, got \(x.shape)")
        input = x
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let rows = n * h * w
        var y = Tensor.uninitialized([n, h, w, outChannels])
        let cout = outChannels, k = columnLength
        let (kh, kw, cin) = (kernelHeight, kernelWidth, inChannels)
        let pointwise = isPointwise
        // Parts of at least 128 rows, one per thread; each part works through its rows in chunks whose
        // columns fit the workspace (cache-sized, see `Workspace`). Every part starts its chunk of y
        // from the bias (or zero) and accumulates the product into it while it is still in cache.
        let parts = Parallel.parts(rows: rows, minimumPerPart: 128)
        let chunk = pointwise ? min(rows, 4096) : workspace.rowsPerChunk(rowLength: k, rows: (rows + parts - 1) / parts)
        let buffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: pointwise ? 1 : chunk * k)) }
        let hasBias = bias != nil
        y.storage.withUnsafeMutableBufferPointer { yb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    (bias?.value.storage ?? [0]).withUnsafeBufferPointer { bb in
                        let (source, weights, target) = (SendablePointer(xb.baseAddress!), SendablePointer(kb.baseAddress!), SendablePointer(yb.baseAddress!))
                        let biasPointer = SendablePointer(bb.baseAddress!)
                        Parallel.forEach(parts) { part in
                            let range = Parallel.slice(rows, parts: parts, part)
                            var r0 = range.lowerBound
                            while r0 < range.upperBound {
                                let r1 = min(range.upperBound, r0 + chunk), m = r1 - r0
                                let out = target.pointer + r0 * cout
                                if hasBias {
                                    for r in 0..<m { (out + r * cout).update(from: biasPointer.pointer, count: cout) }
                                }
                                let a: UnsafeMutablePointer<Float>
                                if pointwise {
                                    a = source.pointer + r0 * k
                                } else {
                                    a = buffers[part].pointer
                                    Conv2D.im2colSerial(source.pointer, h: h, w: w, channels: cin, kh: kh, kw: kw,
                                                        rows: r0..<r1, firstRow: r0, into: a)
                                }
                                Conv2D.product(parts: parts, m: m, n: cout, k: k, a: a, lda: k, b: weights.pointer, ldb: cout,
                                               beta: hasBias ? 1 : 0, c: out, ldc: cout)
                                r0 = r1
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2D \(name): backward before forward") }
        precondition(dy.shape == [x.shape[0], x.shape[1], x.shape[2], outChannels],
                     "Conv2D \(name): dy shape \(dy.shape) does not match output of input \(x.shape)")
        let (h, w) = (x.shape[1], x.shape[2])
        let rows = x.shape[0] * h * w
        let cout = outChannels, k = columnLength
        let (kh, kw, cin) = (kernelHeight, kernelWidth, inChannels)
        let pointwise = isPointwise, wantsInput = inputGradientNeeded
        // Every element of dx is written by one GEMM below (beta 0): no need to zero it first.
        var dx = wantsInput ? Tensor.uninitialized(x.shape) : Tensor.zeros(x.shape)
        let kd = kh * kw * cout   // column length of dY's im2col
        let parts = Parallel.parts(rows: rows, minimumPerPart: 128)
        let chunk = pointwise ? min(rows, 4096)
            : workspace.rowsPerChunk(rowLength: max(k, kd), rows: (rows + parts - 1) / parts)
        let colBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.columns, part: $0, count: pointwise ? 1 : chunk * k)) }
        let dcolBuffers = (0..<parts).map { SendablePointer(workspace.buffer(.gradientColumns, part: $0, count: pointwise || !wantsInput ? 1 : chunk * kd)) }
        // Each part sums its own dW and dBias; the parts are added in a fixed order (deterministic).
        let partialLength = k * cout + cout
        let partials = (0..<parts).map { part in
            let p = workspace.buffer(.partialGradients, part: part, count: partialLength)
            p.initialize(repeating: 0, count: partialLength)
            return SendablePointer(p)
        }
        let hasBias = bias != nil
        let rotated = pointwise ? [] : rotatedKernel()   // for dX of a 1x1 convolution W^T is read in place
        dy.storage.withUnsafeBufferPointer { dyb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    rotated.withUnsafeBufferPointer { rb in
                        dx.storage.withUnsafeMutableBufferPointer { dxb in
                            let source = SendablePointer(xb.baseAddress!), gradient = SendablePointer(dyb.baseAddress!)
                            let weights = SendablePointer(kb.baseAddress!), target = SendablePointer(dxb.baseAddress!)
                            let rotatedKernel = SendablePointer(rb.baseAddress ?? kb.baseAddress!)
                            Parallel.forEach(parts) { part in
                                let dW = partials[part].pointer, dB = dW + k * cout
                                let range = Parallel.slice(rows, parts: parts, part)
                                var r0 = range.lowerBound
                                while r0 < range.upperBound {
                                    let r1 = min(range.upperBound, r0 + chunk), m = r1 - r0
                                    let g = gradient.pointer + r0 * cout
                                    if hasBias {
                                        for r in 0..<m { let row = g + r * cout; for c in 0..<cout { dB[c] += row[c] } }
                                    }
                                    let cols: UnsafeMutablePointer<Float>
                                    if pointwise {
                                        cols = source.pointer + r0 * k
                                    } else {
                                        cols = colBuffers[part].pointer
                                        Conv2D.im2colSerial(source.pointer, h: h, w: w, channels: cin, kh: kh, kw: kw,
                                                            rows: r0..<r1, firstRow: r0, into: cols)
                                    }
                                    // dW (k x cout) += cols^T (k x m) * dY (m x cout)
                                    Conv2D.product(parts: parts, transA: true, m: k, n: cout, k: m, a: cols, lda: k,
                                                   b: g, ldb: cout, beta: 1, c: dW, ldc: cout)
                                    if wantsInput {
                                        if pointwise {
                                            // dX (m x cin) = dY (m x cout) * W^T (cout x cin)
                                            Conv2D.product(parts: parts, transB: true, m: m, n: cin, k: cout, a: g, lda: cout,
                                                           b: weights.pointer, ldb: cout, beta: 0, c: target.pointer + r0 * cin, ldc: cin)
                                        } else {
                                            // dX (m x cin) = im2col(dY) (m x kh*kw*cout) * W' (kh*kw*cout x cin)
                                            let dcols = dcolBuffers[part].pointer
                                            Conv2D.im2colSerial(gradient.pointer, h: h, w: w, channels: cout, kh: kh, kw: kw,
                                                                rows: r0..<r1, firstRow: r0, into: dcols)
                                            Conv2D.product(parts: parts, m: m, n: cin, k: kd, a: dcols, lda: kd, b: rotatedKernel.pointer, ldb: cin,
                                                           beta: 0, c: target.pointer + r0 * cin, ldc: cin)
                                        }
                                    }
                                    r0 = r1
                                }
                            }
                        }
                    }
                }
            }
        }
        kernel.grad.storage.withUnsafeMutableBufferPointer { dkb in
            for p in partials { for i in 0..<(k * cout) { dkb[i] += p.pointer[i] } }
        }
        if let bias {
            bias.grad.storage.withUnsafeMutableBufferPointer { dbb in
                for p in partials { for c in 0..<cout { dbb[c] += p.pointer[k * cout + c] } }
            }
        }
        return dx
    }

    /// A GEMM inside a part: serial when the rows are already split across threads, otherwise
    /// (one part, few rows) split by `BLAS.gemm` itself. Either way the result is the same.
    @inline(__always)
    private static func product(parts: Int, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if parts == 1 {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            BLAS.gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Columns for output pixels `rows` (flat n*h*w indices) of an NHWC tensor with `cin` channels,
    /// written from `cols` on (row `firstRow` first): each row holds, for each kernel tap (ky, kx) in
    /// order, the `cin` values under it (zero where the tap falls in the padding).
    private static func im2colSerial(_ x: UnsafePointer<Float>, h: Int, w: Int, channels cin: Int, kh: Int, kw: Int,
                                     rows: Range<Int>, firstRow: Int, into cols: UnsafeMutablePointer<Float>) {
        let ph = (kh - 1) / 2, pw = (kw - 1) / 2
        let k = kh * kw * cin
        let pixelsPerImage = h * w
        for r in rows {
            let n = r / pixelsPerImage
            let p = r - n * pixelsPerImage
            let y = p / w, xx = p - y * w
            var dst = cols + (r - firstRow) * k
            let image = x + n * pixelsPerImage * cin
            for ky in 0..<kh {
                let sy = y + ky - ph
                if sy < 0 || sy >= h {
                    dst.update(repeating: 0, count: kw * cin)
                    dst += kw * cin
                    continue
                }
                let sx0 = xx - pw
                if sx0 >= 0 && sx0 + kw <= w {
                    // The whole kernel row lies inside: one contiguous copy of kw*cin floats.
                    dst.update(from: image + (sy * w + sx0) * cin, count: kw * cin)
                    dst += kw * cin
                    continue
                }
                for kx in 0..<kw {
                    let sx = sx0 + kx
                    if sx < 0 || sx >= w {
                        dst.update(repeating: 0, count: cin)
                    } else {
                        dst.update(from: image + (sy * w + sx) * cin, count: cin)
                    }
                    dst += cin
                }
            }
        }
    }

    /// The kernel for the input gradient: dX is the "same" convolution of dY with the kernel rotated
    /// by 180 degrees and its channel axes swapped, `W'[ky, kx, co, ci] = W[kh-1-ky, kw-1-kx, ci, co]`.
    /// Computing dX this way (gather + GEMM) instead of a col2im scatter keeps it parallel and race-free.
    private func rotatedKernel() -> [Float] {
        let kh = kernelHeight, kw = kernelWidth, cin = inChannels, cout = outChannels
        var out = [Float](repeating: 0, count: kernel.value.count)
        kernel.value.storage.withUnsafeBufferPointer { k in
            for ky in 0..<kh { for kx in 0..<kw { for ci in 0..<cin { for co in 0..<cout {
                out[(((kh - 1 - ky) * kw + (kw - 1 - kx)) * cout + co) * cin + ci] = k[((ky * kw + kx) * cin + ci) * cout + co]
            } } } }
        }
        return out
    }
}
