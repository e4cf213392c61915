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
        precondition(x.rank == 4 && x.shape[3] == inChannels,
                     "ConvTranspose2D \(name): expected NHWC input with \(inChannels) channels, got \(x.shape)")
        input = x
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let rows = n * h * w, cout = outChannels, cin = inChannels, zc = 4 * cout
        var y = Tensor.zeros([n, 2 * h, 2 * w, cout])
        let chunk = workspace.rowsPerChunk(rowLength: zc, rows: rows)
        let z = workspace.buffer(0, count: chunk * zc)
        x.storage.withUnsafeBufferPointer { xb in
            kernel.value.storage.withUnsafeBufferPointer { kb in
                bias.value.storage.withUnsafeBufferPointer { bb in
                    y.storage.withUnsafeMutableBufferPointer { yb in
                        var r0 = 0
                        while r0 < rows {
                            let r1 = min(rows, r0 + chunk)
                            // Z (m x 4cout) = X (m x cin) * K^T (cin x 4cout)
                            BLAS.gemm(transB: true, m: r1 - r0, n: zc, k: cin, a: xb.baseAddress! + r0 * cin, lda: cin,
                                      b: kb.baseAddress!, ldb: cin, beta: 0, c: z, ldc: zc)
                            for r in r0..<r1 {
                                let img = r / (h * w), p = r % (h * w), i = p / w, j = p % w
                                for dy in 0..<2 {
                                    // pixels (2i+dy, 2j) and (2i+dy, 2j+1) are adjacent: 2*cout floats
                                    let dst = yb.baseAddress! + ((img * 2 * h + 2 * i + dy) * 2 * w + 2 * j) * cout
                                    let src = z + (r - r0) * zc + dy * 2 * cout
                                    for c in 0..<(2 * cout) { dst[c] = src[c] + bb[c % cout] }
                                }
                            }
                            r0 = r1
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("ConvTranspose2D \(name): backward before forward") }
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        precondition(dy.shape == [n, 2 * h, 2 * w, outChannels],
                     "ConvTranspose2D \(name): dy \(dy.shape) does not match output of input \(x.shape)")
        let rows = n * h * w, cout = outChannels, cin = inChannels, zc = 4 * cout
        var dx = Tensor.zeros(x.shape)
        let chunk = workspace.rowsPerChunk(rowLength: zc, rows: rows)
        let dz = workspace.buffer(0, count: chunk * zc)
        dy.storage.withUnsafeBufferPointer { dyb in
            bias.grad.storage.withUnsafeMutableBufferPointer { dbb in
                let total = dy.count / cout
                for p in 0..<total {
                    let row = dyb.baseAddress! + p * cout
                    for c in 0..<cout { dbb[c] += row[c] }
                }
            }
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    kernel.grad.storage.withUnsafeMutableBufferPointer { dkb in
                        dx.storage.withUnsafeMutableBufferPointer { dxb in
                            var r0 = 0
                            while r0 < rows {
                                let r1 = min(rows, r0 + chunk), m = r1 - r0
                                // Gather dZ from the output gradient (inverse of forward's scatter).
                                for r in r0..<r1 {
                                    let img = r / (h * w), p = r % (h * w), i = p / w, j = p % w
                                    for d in 0..<2 {
                                        let src = dyb.baseAddress! + ((img * 2 * h + 2 * i + d) * 2 * w + 2 * j) * cout
                                        (dz + (r - r0) * zc + d * 2 * cout).update(from: src, count: 2 * cout)
                                    }
                                }
                                // dK (4cout x cin) += dZ^T (4cout x m) * X (m x cin)
                                BLAS.gemm(transA: true, m: zc, n: cin, k: m, a: dz, lda: zc,
                                          b: xb.baseAddress! + r0 * cin, ldb: cin, beta: 1, c: dkb.baseAddress!, ldc: cin)
                                // dX (m x cin) = dZ (m x 4cout) * K (4cout x cin)
                                BLAS.gemm(m: m, n: cin, k: zc, a: dz, lda: zc, b: kb.baseAddress!, ldb: cin,
                                          beta: 0, c: dxb.baseAddress! + r0 * cin, ldc: cin)
                                r0 = r1
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}
