import CKernels
/// 2-D convolution, stride 1, "same" padding, by im2col + `cblas_sgemm`.
///
/// Input `x` is NHWC `(n, h, w, cin)`; the kernel is HWIO `(kh, kw, cin, cout)`, as Keras stores it.
/// Output is `(n, h, w, cout)`. Kernels are odd-sized; "same" pads `(k-1)/2` on each side, as Keras
/// does. A 1x1 convolution is a plain GEMM on the input, with no im2col. Larger kernels use
/// `RowConvolution`: im2col along the kernel's width, one GEMM, and a col2im-style sum along its
/// height (see there for why).
///
/// Memory: the columns of one band of image rows live in the model's `Workspace`, so a large
/// batch costs no more scratch than a small one. Backward recomputes the columns rather than
/// keeping them from forward, and computes dX as a convolution of dY with the rotated kernel.
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

    /// Whether forward and the input gradient run by Winograd F(2x2, 3x3) (see `EngineChoices`).
    var usesWinograd: Bool {
        guard kernelHeight == 3, kernelWidth == 3, let minimum = EngineChoices.winogradThreshold else { return false }
        return min(inChannels, outChannels) >= minimum
    }

    /// Whether, among those, F(4x4, 3x3) runs on images of `height` x `width` (see `EngineChoices`).
    func usesWinogradF4(height: Int, width: Int) -> Bool {
        guard usesWinograd, let minimum = EngineChoices.winogradF4Threshold else { return false }
        return min(inChannels, outChannels) >= minimum && min(height, width) >= WinogradF4.minimumSide
    }

    /// The instruction set of the direct convolution (`DirectConvolution`) when forward runs by
    /// it: narrow 3x3 layers not by Winograd, with a multiple of 16 output channels.
    var directISA: DirectConvolution.ISA? {
        guard kernelHeight == 3, kernelWidth == 3, !usesWinograd, max(inChannels, outChannels) <= DirectConvolution.maximumChannels,
              DirectConvolution.accepts(targetChannels: outChannels) else { return nil }
        return DirectConvolution.isa
    }

    /// The same for backward (dW, and dX when needed, whose output has `inChannels`). A narrow
    /// layer run by Winograd keeps its weight gradient direct (its dX by Winograd): a 32 -> 32
    /// layer at 64x64 (batch 8, Intel AVX-512) took 0.75x the band pass's backward CPU time.
    var directBackwardISA: DirectConvolution.ISA? {
        if usesWinograd {
            guard !usesWinogradWeightGradient, max(inChannels, outChannels) <= DirectConvolution.maximumChannels,
                  DirectConvolution.accepts(targetChannels: outChannels) else { return nil }
            return DirectConvolution.isa
        }
        return inputGradientNeeded && !DirectConvolution.accepts(targetChannels: inChannels) ? nil : directISA
    }

    /// Whether the weight gradient runs by Winograd too (see `EngineChoices`).
    var usesWinogradWeightGradient: Bool {
        guard usesWinograd, let minimum = EngineChoices.winogradWeightsThreshold else { return false }
        return min(inChannels, outChannels) >= minimum
    }

    /// Whether, on images of `height` x `width`, the weight gradient runs by F(4x4, 3x3) (see
    /// `EngineChoices`): layers whose forward pass does, unless their weight gradient is direct
    /// (`directBackwardISA`: a 32 -> 32 layer at 64x64 took half F(4x4)'s CPU time that way).
    func usesWinogradF4WeightGradient(height: Int, width: Int) -> Bool {
        guard usesWinogradF4(height: height, width: width), directBackwardISA == nil,
              let minimum = EngineChoices.winogradF4WeightsThreshold else { return false }
        return min(inChannels, outChannels) >= minimum
    }

    /// The Winograd tiling of the weight gradient on images of `height` x `width`; nil: not by Winograd.
    private func weightGradientTiling(height: Int, width: Int) -> Winograd.Tiling? {
        usesWinogradF4WeightGradient(height: height, width: width) ? .f4 : usesWinogradWeightGradient ? .f2 : nil
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        input = x
        return convolve(x, scale: nil, bias: bias?.value.storage, relu: false)
    }

    /// Inference with `norm` folded in: kernel columns scaled by `norm`'s per-channel scale, bias
    /// `scale * b + shift`, and its ReLU applied as each output row is completed. One pass over the
    /// output instead of two.
    public func inferenceForward(_ x: Tensor, foldingIn norm: BatchNorm) -> Tensor {
        precondition(norm.channels == outChannels, "Conv2D \(name): cannot fold \(norm.name) (\(norm.channels) channels into \(outChannels))")
        let (scale, shift) = norm.inferenceAffine
        let b = bias?.value.storage
        let foldedBias = (0..<outChannels).map { c in scale[c] * (b?[c] ?? 0) + shift[c] }
        return convolve(x, scale: scale, bias: foldedBias, relu: norm.reluAfter)
    }

    /// The convolution of `x` with this layer's kernel, its output channels multiplied by `scale`
    /// when given (folded in while the kernel is laid out for the GEMM), plus `bias`, optionally
    /// followed by a ReLU.
    private func convolve(_ x: Tensor, scale: [Float]?, bias: [Float]?, relu: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inChannels,
                     "Conv2D \(name): expected NHWC input with \(inChannels) channels, got \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        var y = Tensor.uninitialized([n, h, w, outChannels])
        let (kh, kw, cin, cout) = (kernelHeight, kernelWidth, inChannels, outChannels)
        y.storage.withUnsafeMutableBufferPointer { yb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    (bias ?? [0]).withUnsafeBufferPointer { bb in
                        let biasPointer = bias == nil ? nil : bb.baseAddress!
                        if isPointwise {
                            // A 1x1 kernel is (cin x cout) as stored; only a scaled one needs a copy.
                            let scaled = scale.map { RowConvolution.matrix(kb.baseAddress!, kh: 1, kw: 1, cin: cin, cout: cout, columnScale: $0) }
                            (scaled ?? []).withUnsafeBufferPointer { sb in
                                pointwiseForward(xb.baseAddress!, rows: n * h * w, kernel: scaled == nil ? kb.baseAddress! : sb.baseAddress!,
                                                 bias: biasPointer, relu: relu, into: yb.baseAddress!)
                            }
                        } else if usesWinogradF4(height: h, width: w) {
                            let matrices = WinogradF4.kernelMatrices(kb.baseAddress!, cin: cin, cout: cout, columnScale: scale)
                            matrices.withUnsafeBufferPointer { mb in
                                WinogradF4.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin, matrices: mb.baseAddress!,
                                                    targetChannels: cout, bias: biasPointer, relu: relu, into: yb.baseAddress!,
                                                    workspace: workspace)
                            }
                        } else if let isa = directISA {
                            let scaled = scale.map { DirectConvolution.scaledKernel(kb.baseAddress!, cin: cin, cout: cout, scale: $0) }
                            (scaled ?? []).withUnsafeBufferPointer { sb in
                                DirectConvolution.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin,
                                                           kernel: scaled == nil ? kb.baseAddress! : sb.baseAddress!, targetChannels: cout,
                                                           bias: biasPointer, relu: relu, into: yb.baseAddress!, isa: isa, workspace: workspace)
                            }
                        } else if usesWinograd {
                            let matrices = Winograd.kernelMatrices(kb.baseAddress!, cin: cin, cout: cout, columnScale: scale)
                            matrices.withUnsafeBufferPointer { mb in
                                Winograd.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin, matrices: mb.baseAddress!,
                                                  targetChannels: cout, bias: biasPointer, relu: relu, into: yb.baseAddress!,
                                                  workspace: workspace)
                            }
                        } else {
                            let matrix = RowConvolution.matrix(kb.baseAddress!, kh: kh, kw: kw, cin: cin, cout: cout, columnScale: scale)
                            matrix.withUnsafeBufferPointer { mb in
                                RowConvolution.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin, kh: kh, kw: kw,
                                                        matrix: mb.baseAddress!, targetChannels: cout, bias: biasPointer, relu: relu,
                                                        into: yb.baseAddress!, workspace: workspace)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// y (rows x cout) = bias + x (rows x cin) * W (cin x cout), rows split across threads in chunks
    /// (each chunk starts from the bias and accumulates the product while it is still in cache).
    private func pointwiseForward(_ x: UnsafePointer<Float>, rows: Int, kernel: UnsafePointer<Float>,
                                  bias: UnsafePointer<Float>?, relu: Bool, into y: UnsafeMutablePointer<Float>) {
        let (cin, cout) = (inChannels, outChannels)
        let parts = Parallel.parts(rows: rows, minimumPerPart: 128)
        let chunk = min(rows, 4096)
        let (source, weights, target) = (SendablePointer(x), SendablePointer(kernel), SendablePointer(y))
        let biasPointer = bias.map { SendablePointer($0) }
        if cout == 1 {
            // One output channel (the U-Net's head): a dot product per pixel.
            let b = bias?.pointee ?? 0
            Parallel.forEach(parts) { part in
                let range = Parallel.slice(rows, parts: parts, part)
                ckernels_pointwise_single(source.pointer + range.lowerBound * cin, range.count, cin, weights.pointer, b, relu ? 1 : 0,
                                          target.pointer + range.lowerBound)
            }
            return
        }
        Parallel.forEach(parts) { part in
            let range = Parallel.slice(rows, parts: parts, part)
            var r0 = range.lowerBound
            while r0 < range.upperBound {
                let r1 = min(range.upperBound, r0 + chunk)
                let out = target.pointer + r0 * cout
                if let biasPointer {
                    for r in 0..<(r1 - r0) { (out + r * cout).update(from: biasPointer.pointer, count: cout) }
                }
                BLAS.gemm(inPartOf: parts, m: r1 - r0, n: cout, k: cin, a: source.pointer + r0 * cin, lda: cin,
                                       b: weights.pointer, ldb: cout, beta: biasPointer == nil ? 0 : 1, c: out, ldc: cout)
                if relu { RowConvolution.clamp(out, count: (r1 - r0) * cout) }
                r0 = r1
            }
        }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2D \(name): backward before forward") }
        precondition(dy.shape == [x.shape[0], x.shape[1], x.shape[2], outChannels],
                     "Conv2D \(name): dy shape \(dy.shape) does not match output of input \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (kh, kw, cin, cout) = (kernelHeight, kernelWidth, inChannels, outChannels)
        // Every element of dx is written below; without an input gradient it is all zeros.
        var dx = inputGradientNeeded ? Tensor.uninitialized(x.shape) : Tensor.zeros(x.shape)
        dy.storage.withUnsafeBufferPointer { dyb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    kernel.grad.storage.withUnsafeMutableBufferPointer { dkb in
                        dx.storage.withUnsafeMutableBufferPointer { dxb in
                            let partials: [SendablePointer<Float>]
                            if isPointwise {
                                partials = pointwiseBackward(xb.baseAddress!, gradient: dyb.baseAddress!, rows: n * h * w,
                                                             kernel: kb.baseAddress!, inputGradient: inputGradientNeeded ? dxb.baseAddress! : nil)
                                for p in partials { for i in 0..<(cin * cout) { dkb[i] += p.pointer[i] } }
                            } else if let isa = directBackwardISA {
                                partials = DirectConvolution.filterGradient(xb.baseAddress!, gradient: dyb.baseAddress!, n: n, h: h, w: w,
                                                                            cin: cin, cout: cout, isa: isa, workspace: workspace)
                                if inputGradientNeeded && usesWinograd {
                                    winogradInputGradient(dyb.baseAddress!, n: n, h: h, w: w, kernel: kb.baseAddress!, into: dxb.baseAddress!)
                                } else if inputGradientNeeded {
                                    let rotated = DirectConvolution.inputGradientKernel(kb.baseAddress!, cin: cin, cout: cout)
                                    rotated.withUnsafeBufferPointer { rb in
                                        DirectConvolution.convolve(dyb.baseAddress!, n: n, h: h, w: w, sourceChannels: cout, kernel: rb.baseAddress!,
                                                                   targetChannels: cin, bias: nil, relu: false, into: dxb.baseAddress!,
                                                                   isa: isa, workspace: workspace)
                                    }
                                }
                                // The partials are HWIO, as the kernel.
                                for p in partials { for i in 0..<(kh * kw * cin * cout) { dkb[i] += p.pointer[i] } }
                            } else if let tiling = weightGradientTiling(height: h, width: w) {
                                // dW (and the bias gradient) by Winograd, dX as a Winograd convolution
                                // of dY with the rotated kernel.
                                partials = []  // the bias gradient too is added by weightGradient
                                let dk = dkb.baseAddress!
                                let weightGradient = { (db: UnsafeMutablePointer<Float>?) in
                                    Winograd.weightGradient(xb.baseAddress!, gradient: dyb.baseAddress!, n: n, h: h, w: w, cin: cin, cout: cout,
                                                            kernelGradient: dk, biasGradient: db, tiling: tiling, workspace: self.workspace)
                                }
                                if let bias {
                                    bias.grad.storage.withUnsafeMutableBufferPointer { weightGradient($0.baseAddress!) }
                                } else {
                                    weightGradient(nil)
                                }
                                if inputGradientNeeded { winogradInputGradient(dyb.baseAddress!, n: n, h: h, w: w, kernel: kb.baseAddress!, into: dxb.baseAddress!) }
                            } else {
                                // With Winograd, the band pass computes dW only and dX is a Winograd
                                // convolution of dY with the rotated kernel.
                                let winograd = inputGradientNeeded && usesWinograd
                                let matrix = inputGradientNeeded && !winograd
                                    ? RowConvolution.gradientMatrix(kb.baseAddress!, kh: kh, kw: kw, cin: cin, cout: cout) : [0]
                                partials = matrix.withUnsafeBufferPointer { mb in
                                    RowConvolution.backward(xb.baseAddress!, gradient: dyb.baseAddress!, n: n, h: h, w: w,
                                                            cin: cin, cout: cout, kh: kh, kw: kw, gradientMatrix: mb.baseAddress!,
                                                            inputGradient: inputGradientNeeded && !winograd ? dxb.baseAddress! : nil,
                                                            workspace: workspace)
                                }
                                if winograd { winogradInputGradient(dyb.baseAddress!, n: n, h: h, w: w, kernel: kb.baseAddress!, into: dxb.baseAddress!) }
                                RowConvolution.accumulate(partials, into: dkb.baseAddress!, kh: kh, kw: kw, cin: cin, cout: cout)
                            }
                            if let bias {
                                let k = kh * kw * cin
                                bias.grad.storage.withUnsafeMutableBufferPointer { dbb in
                                    for p in partials { for c in 0..<cout { dbb[c] += p.pointer[k * cout + c] } }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// dX as the Winograd convolution (F(4x4, 3x3) where it applies) of dY with the rotated kernel.
    private func winogradInputGradient(_ dy: UnsafePointer<Float>, n: Int, h: Int, w: Int, kernel: UnsafePointer<Float>,
                                       into dx: UnsafeMutablePointer<Float>) {
        if usesWinogradF4(height: h, width: w) {
            let matrices = WinogradF4.kernelMatrices(kernel, cin: inChannels, cout: outChannels, forInputGradient: true)
            matrices.withUnsafeBufferPointer { mb in
                WinogradF4.convolve(dy, n: n, h: h, w: w, sourceChannels: outChannels, matrices: mb.baseAddress!,
                                    targetChannels: inChannels, bias: nil, relu: false, into: dx, workspace: workspace)
            }
        } else {
            let matrices = Winograd.kernelMatrices(kernel, cin: inChannels, cout: outChannels, forInputGradient: true)
            matrices.withUnsafeBufferPointer { mb in
                Winograd.convolve(dy, n: n, h: h, w: w, sourceChannels: outChannels, matrices: mb.baseAddress!,
                                  targetChannels: inChannels, bias: nil, relu: false, into: dx, workspace: workspace)
            }
        }
    }

    /// dW (cin x cout) = X^T dY and dBias = sum of dY into one partial per part (returned in part
    /// order); dX (rows x cin) = dY W^T when `inputGradient` is given.
    private func pointwiseBackward(_ x: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>, rows: Int,
                                   kernel: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?) -> [SendablePointer<Float>] {
        let (cin, cout) = (inChannels, outChannels)
        let parts = Parallel.parts(rows: rows, minimumPerPart: 128)
        let chunk = min(rows, 4096)
        let partialLength = cin * cout + cout
        let partials = workspace.zeroedPartials(parts: parts, count: partialLength)
        let (source, gradient, weights) = (SendablePointer(x), SendablePointer(dy), SendablePointer(kernel))
        let target = inputGradient.map { SendablePointer($0) }
        Parallel.forEach(parts) { part in
            let dW = partials[part].pointer, dB = dW + cin * cout
            let range = Parallel.slice(rows, parts: parts, part)
            var r0 = range.lowerBound
            while r0 < range.upperBound {
                let r1 = min(range.upperBound, r0 + chunk), m = r1 - r0
                let g = gradient.pointer + r0 * cout
                for r in 0..<m { let row = g + r * cout; for c in 0..<cout { dB[c] += row[c] } }
                BLAS.gemm(inPartOf: parts, transA: true, m: cin, n: cout, k: m, a: source.pointer + r0 * cin, lda: cin,
                                       b: g, ldb: cout, beta: 1, c: dW, ldc: cout)
                if let target {
                    BLAS.gemm(inPartOf: parts, transB: true, m: m, n: cin, k: cout, a: g, lda: cout,
                                           b: weights.pointer, ldb: cout, beta: 0, c: target.pointer + r0 * cin, ldc: cin)
                }
                r0 = r1
            }
        }
        return partials
    }
}
