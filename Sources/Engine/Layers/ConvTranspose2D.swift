import CKernels
/// Transposed convolution with a 2x2 kernel and stride 2 (Keras `Conv2DTranspose(f, 2, strides=2)`).
///
/// Input NHWC `(n, h, w, cin)` -> output `(n, 2h, 2w, cout)`. Keras stores this kernel as
/// `(kh, kw, cout, cin)` = `(2, 2, cout, cin)`; read row-major it is a `(4*cout) x cin` matrix K.
/// Kernel and stride are equal, so the taps never overlap: with Z = X * K^T (one GEMM, `(n*h*w) x 4*cout`),
/// output pixel (2i+dy, 2j+dx) channel co is Z[(i, j), (dy, dx, co)] + bias[co].
public final class ConvTranspose2D: Layer {
    public let name: String
    public let kernel: Parameter
    public let bias: Parameter
    public let inChannels: Int
    public let outChannels: Int
    public var workspace: Workspace

    /// Kept by forward for backward: the input.
    private var input: Tensor?

    public init(name: String, kernel: Tensor, bias: Tensor, workspace: Workspace = Workspace()) {
        precondition(kernel.rank == 4 && kernel.shape[0] == 2 && kernel.shape[1] == 2,
                     "ConvTranspose2D \(name): kernel must be (2, 2, cout, cin), got \(kernel.shape)")
        precondition(bias.shape == [kernel.shape[2]],
                     "ConvTranspose2D \(name): bias \(bias.shape) does not match cout \(kernel.shape[2])")
        self.name = name
        self.outChannels = kernel.shape[2]
        self.inChannels = kernel.shape[3]
        self.kernel = Parameter(name: "\(name).kernel", value: kernel)
        self.bias = Parameter(name: "\(name).bias", value: bias)
        self.workspace = workspace
    }

    /// Freshly initialised (Glorot uniform as Keras computes the fans for this kernel), bias zero.
    public convenience init(name: String, inChannels: Int, outChannels: Int, initializer: Initializer,
                            rng: inout SeededGenerator, workspace: Workspace = Workspace()) {
        // Keras reads fans from the kernel shape (2, 2, cout, cin): fan_in = 4*cout, fan_out = 4*cin.
        let k = initializer.make(shape: [2, 2, outChannels, inChannels],
                                 fanIn: 4 * outChannels, fanOut: 4 * inChannels, rng: &rng)
        self.init(name: name, kernel: k, bias: Tensor.zeros([outChannels]), workspace: workspace)
    }

    public var parameters: [Parameter] { [kernel, bias] }

    /// FLOPs for one input image of `height` x `width` (2 x MACs: every input pixel feeds 4*cout*cin).
    public func flops(height: Int, width: Int) -> Int { 2 * height * width * 4 * inChannels * outChannels }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "ConvTranspose2D \(name): expected NHWC input, got \(x.shape)")
        // Every output element is written once by the scatter.
        var y = Tensor.uninitialized([x.shape[0], 2 * x.shape[1], 2 * x.shape[2], outChannels])
        forward(x, training: training, into: &y, channelOffset: 0)
        return y
    }

    /// Forward into channels `channelOffset ..< channelOffset + outChannels` of `joined`, an
    /// `(n, 2h, 2w, c)` tensor: the U-Net's decoder writes the upsampled half of its concatenation
    /// in place, with no copy. Every element of those channels is written.
    public func forward(_ x: Tensor, training: Bool, into joined: inout Tensor, channelOffset: Int) {
        precondition(x.rank == 4 && x.shape[3] == inChannels,
                     "ConvTranspose2D \(name): expected NHWC input with \(inChannels) channels, got \(x.shape)")
        input = x
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let rows = n * h * w, cout = outChannels, cin = inChannels, zc = 4 * cout
        let stride = joined.rank == 4 ? joined.shape[3] : 0
        precondition(joined.shape == [n, 2 * h, 2 * w, stride] && channelOffset >= 0 && channelOffset + cout <= stride,
                     "ConvTranspose2D \(name): cannot write \(cout) channels at \(channelOffset) of \(joined.shape)")
        let parts = Parallel.parts(rows: rows, minimumPerPart: 64)
        let chunk = workspace.rowsPerChunk(rowLength: zc, rows: (rows + parts - 1) / parts)
        let buffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: chunk * zc)) }
        x.storage.withUnsafeBufferPointer { xb in
            kernel.value.storage.withUnsafeBufferPointer { kb in
                bias.value.storage.withUnsafeBufferPointer { bb in
                    joined.storage.withUnsafeMutableBufferPointer { yb in
                        let (source, weights, target, biases) = (SendablePointer(xb.baseAddress!), SendablePointer(kb.baseAddress!),
                                                                 SendablePointer(yb.baseAddress! + channelOffset), SendablePointer(bb.baseAddress!))
                        Parallel.forEach(parts) { part in
                            let z = buffers[part].pointer
                            let range = Parallel.slice(rows, parts: parts, part)
                            var r0 = range.lowerBound
                            while r0 < range.upperBound {
                                let r1 = min(range.upperBound, r0 + chunk)
                                // Z (m x 4cout) = X (m x cin) * K^T (cin x 4cout)
                                BLAS.gemm(inPartOf: parts, transB: true, m: r1 - r0, n: zc, k: cin, a: source.pointer + r0 * cin, lda: cin,
                                          b: weights.pointer, ldb: cin, beta: 0, c: z, ldc: zc)
                                ckernels_upsample_scatter(z, r0, r1 - r0, h, w, cout, biases.pointer, target.pointer, stride)
                                r0 = r1
                            }
                        }
                    }
                }
            }
        }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        backward(dy, channelOffset: 0)
    }

    /// Backward from channels `channelOffset ..< channelOffset + outChannels` of `dJoined`, the
    /// gradient of the tensor forward wrote into (read in place).
    public func backward(_ dJoined: Tensor, channelOffset: Int) -> Tensor {
        guard let x = input else { preconditionFailure("ConvTranspose2D \(name): backward before forward") }
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let stride = dJoined.rank == 4 ? dJoined.shape[3] : 0
        precondition(dJoined.shape == [n, 2 * h, 2 * w, stride] && channelOffset >= 0 && channelOffset + outChannels <= stride,
                     "ConvTranspose2D \(name): dy \(dJoined.shape) at channel \(channelOffset) does not match output of input \(x.shape)")
        let dy = dJoined
        let rows = n * h * w, cout = outChannels, cin = inChannels, zc = 4 * cout
        var dx = Tensor.uninitialized(x.shape)
        let parts = Parallel.parts(rows: rows, minimumPerPart: 64)
        let chunk = workspace.rowsPerChunk(rowLength: zc, rows: (rows + parts - 1) / parts)
        let buffers = (0..<parts).map { SendablePointer(workspace.buffer(.product, part: $0, count: chunk * zc)) }
        // Each part sums its own dK and dBias; the parts are added in a fixed order (deterministic).
        let partialLength = zc * cin + cout
        let partials = workspace.zeroedPartials(parts: parts, count: partialLength)
        dy.storage.withUnsafeBufferPointer { dyb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    dx.storage.withUnsafeMutableBufferPointer { dxb in
                        let (gradient, source, weights, target) = (SendablePointer(dyb.baseAddress! + channelOffset), SendablePointer(xb.baseAddress!),
                                                                   SendablePointer(kb.baseAddress!), SendablePointer(dxb.baseAddress!))
                        Parallel.forEach(parts) { part in
                            let dz = buffers[part].pointer
                            let dK = partials[part].pointer, dB = dK + zc * cin
                            let range = Parallel.slice(rows, parts: parts, part)
                            var r0 = range.lowerBound
                            while r0 < range.upperBound {
                                let r1 = min(range.upperBound, r0 + chunk), m = r1 - r0
                                // Gather dZ from the output gradient (inverse of forward's scatter); the
                                // bias gradient sums the same values.
                                ckernels_upsample_gather(gradient.pointer, stride, r0, m, h, w, cout, dz, dB)
                                // dK (4cout x cin) += dZ^T (4cout x m) * X (m x cin)
                                BLAS.gemm(inPartOf: parts, transA: true, m: zc, n: cin, k: m, a: dz, lda: zc,
                                          b: source.pointer + r0 * cin, ldb: cin, beta: 1, c: dK, ldc: cin)
                                // dX (m x cin) = dZ (m x 4cout) * K (4cout x cin)
                                BLAS.gemm(inPartOf: parts, m: m, n: cin, k: zc, a: dz, lda: zc, b: weights.pointer, ldb: cin,
                                          beta: 0, c: target.pointer + r0 * cin, ldc: cin)
                                r0 = r1
                            }
                        }
                    }
                }
            }
        }
        kernel.grad.storage.withUnsafeMutableBufferPointer { dkb in
            for p in partials { for i in 0..<(zc * cin) { dkb[i] += p.pointer[i] } }
        }
        bias.grad.storage.withUnsafeMutableBufferPointer { dbb in
            for p in partials { for c in 0..<cout { dbb[c] += p.pointer[zc * cin + c] } }
        }
        return dx
    }
}
