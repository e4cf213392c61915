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
        var y = Tensor(shape: [n, h, w, outChannels], storage: [Float](unsafeUninitializedCapacity: rows * outChannels) { _, c in c = rows * outChannels })
        let cout = outChannels, k = columnLength
        y.storage.withUnsafeMutableBufferPointer { yb in
            let yp = yb.baseAddress!
            // Start from the bias (or zero), then accumulate the product with beta = 1.
            if let bias {
                bias.value.storage.withUnsafeBufferPointer { b in
                    for r in 0..<rows { (yp + r * cout).update(from: b.baseAddress!, count: cout) }
                }
            } else {
                yp.update(repeating: 0, count: rows * cout)
            }
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    if isPointwise {
                        BLAS.gemm(m: rows, n: cout, k: k, a: xb.baseAddress!, lda: k,
                                  b: kb.baseAddress!, ldb: cout, beta: 1, c: yp, ldc: cout)
                        return
                    }
                    // Rows split into one contiguous part per core, each part im2col + single-threaded
                    // GEMM on its own cache-sized chunks: measured faster here than OpenBLAS's own
                    // threads, which split each small chunk GEMM again.
                    let parts = Parallel.parts(rows: rows)
                    let chunk = workspace.rowsPerChunk(rowLength: k, rows: (rows + parts - 1) / parts)
                    let buffers = (0..<parts).map { SendablePointer(pointer: workspace.buffer($0, count: chunk * k)) }
                    let source = SendablePointer(pointer: UnsafeMutablePointer(mutating: xb.baseAddress!))
                    let weights = SendablePointer(pointer: UnsafeMutablePointer(mutating: kb.baseAddress!))
                    let target = SendablePointer(pointer: yp)
                    let (kh, kw, cin) = (kernelHeight, kernelWidth, inChannels)
                    BLAS.singleThreaded(parts > 1) {
                        Parallel.forEach(parts) { part in
                            let cols = buffers[part].pointer
                            var r0 = Parallel.slice(rows, parts: parts, part).lowerBound
                            let end = Parallel.slice(rows, parts: parts, part).upperBound
                            while r0 < end {
                                let r1 = min(end, r0 + chunk)
                                Conv2D.im2colSerial(source.pointer, h: h, w: w, channels: cin, kh: kh, kw: kw,
                                                    rows: r0..<r1, firstRow: r0, into: cols)
                                BLAS.gemm(m: r1 - r0, n: cout, k: k, a: cols, lda: k,
                                          b: weights.pointer, ldb: cout, beta: 1, c: target.pointer + r0 * cout, ldc: cout)
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
        // Every element of dx is written by one GEMM below (beta 0): no need to zero it first.
        var dx = Tensor(shape: x.shape, storage: [Float](unsafeUninitializedCapacity: x.count) { _, n in n = x.count })
        dy.storage.withUnsafeBufferPointer { dyb in
            let dyp = dyb.baseAddress!
            // dBias[c] = sum over all output pixels of dy[., c]
            if let bias {
                bias.grad.storage.withUnsafeMutableBufferPointer { db in
                    let dbp = db.baseAddress!
                    for r in 0..<rows {
                        let row = dyp + r * cout
                        for c in 0..<cout { dbp[c] += row[c] }
                    }
                }
            }
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    kernel.grad.storage.withUnsafeMutableBufferPointer { dkb in
                        dx.storage.withUnsafeMutableBufferPointer { dxb in
                            if isPointwise {
                                // dW (cin x cout) += X^T dY ; dX (rows x cin) = dY W^T
                                BLAS.gemm(transA: true, m: k, n: cout, k: rows, a: xb.baseAddress!, lda: k,
                                          b: dyp, ldb: cout, beta: 1, c: dkb.baseAddress!, ldc: cout)
                                BLAS.gemm(transB: true, m: rows, n: k, k: cout, a: dyp, lda: cout,
                                          b: kb.baseAddress!, ldb: cout, beta: 0, c: dxb.baseAddress!, ldc: k)
                                return
                            }
                            let rotated = rotatedKernel()
                            let kd = kernelHeight * kernelWidth * cout   // column length of dY's im2col
                            let parts = Parallel.parts(rows: rows)
                            let chunk = workspace.rowsPerChunk(rowLength: max(k, kd), rows: (rows + parts - 1) / parts)
                            let colBuffers = (0..<parts).map { SendablePointer(pointer: workspace.buffer(2 * $0, count: chunk * k)) }
                            let dcolBuffers = (0..<parts).map { SendablePointer(pointer: workspace.buffer(2 * $0 + 1, count: chunk * kd)) }
                            // Each part sums its own dW; the parts are added in a fixed order (deterministic).
                            let partials = (0..<parts).map { _ in
                                let p = UnsafeMutablePointer<Float>.allocate(capacity: k * cout)
                                p.initialize(repeating: 0, count: k * cout)
                                return SendablePointer(pointer: p)
                            }
                            defer { for p in partials { p.pointer.deallocate() } }
                            let source = SendablePointer(pointer: UnsafeMutablePointer(mutating: xb.baseAddress!))
                            let gradient = SendablePointer(pointer: UnsafeMutablePointer(mutating: dyp))
                            let target = SendablePointer(pointer: dxb.baseAddress!)
                            let (kh, kw, cin) = (kernelHeight, kernelWidth, inChannels)
                            rotated.withUnsafeBufferPointer { rb in
                                let rotatedKernel = SendablePointer(pointer: UnsafeMutablePointer(mutating: rb.baseAddress!))
                                BLAS.singleThreaded(parts > 1) {
                                    Parallel.forEach(parts) { part in
                                        let cols = colBuffers[part].pointer, dcols = dcolBuffers[part].pointer
                                        let range = Parallel.slice(rows, parts: parts, part)
                                        var r0 = range.lowerBound
                                        while r0 < range.upperBound {
                                            let r1 = min(range.upperBound, r0 + chunk), m = r1 - r0
                                            Conv2D.im2colSerial(source.pointer, h: h, w: w, channels: cin, kh: kh, kw: kw,
                                                                rows: r0..<r1, firstRow: r0, into: cols)
                                            // dW (k x cout) += cols^T (k x m) * dY (m x cout)
                                            BLAS.gemm(transA: true, m: k, n: cout, k: m, a: cols, lda: k,
                                                      b: gradient.pointer + r0 * cout, ldb: cout, beta: 1, c: partials[part].pointer, ldc: cout)
                                            // dX (m x cin) = im2col(dY) (m x kh*kw*cout) * W' (kh*kw*cout x cin)
                                            Conv2D.im2colSerial(gradient.pointer, h: h, w: w, channels: cout, kh: kh, kw: kw,
                                                                rows: r0..<r1, firstRow: r0, into: dcols)
                                            BLAS.gemm(m: m, n: cin, k: kd, a: dcols, lda: kd, b: rotatedKernel.pointer, ldb: cin,
                                                      beta: 0, c: target.pointer + r0 * cin, ldc: cin)
                                            r0 = r1
                                        }
                                    }
                                }
                            }
                            let dk = dkb.baseAddress!
                            for p in partials { for i in 0..<(k * cout) { dk[i] += p.pointer[i] } }
                        }
                    }
                }
            }
        }
        return dx
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
