import CKernels
/// 2-D convolution, stride 1, "same" padding. Which algorithm runs each pass (GEMM, row im2col,
/// direct C kernels, Winograd F(2x2) or F(4x4)) is the layer's `ConvolutionPlan` for the input size.
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
    public var inputGradientNeeded = true { didSet { chosenPlan = nil } }
    /// The thresholds and instruction set the layer's `ConvolutionPlan`s are chosen by.
    public var choices: EngineChoices = .current { didSet { chosenPlan = nil } }
    /// The plan for the last image size seen (a layer runs on one size in training and inference).
    private var chosenPlan: (height: Int, width: Int, plan: ConvolutionPlan)?

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
    public var conv2DLayers: [Conv2D] { [self] }

    public func flops(height: Int, width: Int) -> Int {
        2 * height * width * kernelHeight * kernelWidth * inChannels * outChannels
    }

    /// Which algorithm runs each pass on images of `height` x `width`, chosen once per size.
    public func plan(height: Int, width: Int) -> ConvolutionPlan {
        if let chosen = chosenPlan, chosen.height == height, chosen.width == width { return chosen.plan }
        let plan = ConvolutionPlan.choose(kernelHeight: kernelHeight, kernelWidth: kernelWidth, inChannels: inChannels,
                                          outChannels: outChannels, height: height, width: width,
                                          inputGradientNeeded: inputGradientNeeded, choices: choices)
        chosenPlan = (height, width, plan)
        return plan
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
        let plan = plan(height: h, width: w)
        var y = Tensor.uninitialized([n, h, w, outChannels])
        let (kh, kw, cin, cout) = (kernelHeight, kernelWidth, inChannels, outChannels)
        y.storage.withUnsafeMutableBufferPointer { yb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    (bias ?? [0]).withUnsafeBufferPointer { bb in
                        let (source, weights, target) = (xb.baseAddress!, kb.baseAddress!, yb.baseAddress!)
                        let biasPointer = bias == nil ? nil : bb.baseAddress!
                        switch plan.forward {
                        case .pointwise:
                            // A 1x1 kernel is (cin x cout) as stored; only a scaled one needs a copy.
                            let scaled = scale.map { RowConvolution.matrix(weights, kh: 1, kw: 1, cin: cin, cout: cout, columnScale: $0) }
                            (scaled ?? []).withUnsafeBufferPointer { sb in
                                pointwiseForward(source, rows: n * h * w, kernel: scaled == nil ? weights : sb.baseAddress!,
                                                 bias: biasPointer, relu: relu, into: target)
                            }
                        case .winogradF4:
                            let matrices = WinogradF4.kernelMatrices(weights, cin: cin, cout: cout, columnScale: scale)
                            matrices.withUnsafeBufferPointer { mb in
                                WinogradF4.convolve(source, n: n, h: h, w: w, sourceChannels: cin, matrices: mb.baseAddress!,
                                                    targetChannels: cout, bias: biasPointer, relu: relu, into: target,
                                                    smallGemm: plan.forwardSmallGemm, workspace: workspace)
                            }
                        case .direct:
                            let scaled = scale.map { DirectConvolution.scaledKernel(weights, cin: cin, cout: cout, scale: $0) }
                            (scaled ?? []).withUnsafeBufferPointer { sb in
                                DirectConvolution.convolve(source, n: n, h: h, w: w, sourceChannels: cin,
                                                           kernel: scaled == nil ? weights : sb.baseAddress!, targetChannels: cout,
                                                           bias: biasPointer, relu: relu, into: target, isa: plan.directISA!,
                                                           workspace: workspace)
                            }
                        case .winogradF2:
                            let matrices = Winograd.kernelMatrices(weights, cin: cin, cout: cout, columnScale: scale)
                            matrices.withUnsafeBufferPointer { mb in
                                Winograd.convolve(source, n: n, h: h, w: w, sourceChannels: cin, matrices: mb.baseAddress!,
                                                  targetChannels: cout, bias: biasPointer, relu: relu, into: target,
                                                  smallGemm: plan.forwardSmallGemm, workspace: workspace)
                            }
                        case .rowIm2col:
                            let matrix = RowConvolution.matrix(weights, kh: kh, kw: kw, cin: cin, cout: cout, columnScale: scale)
                            matrix.withUnsafeBufferPointer { mb in
                                RowConvolution.convolve(source, n: n, h: h, w: w, sourceChannels: cin, kh: kh, kw: kw,
                                                        matrix: mb.baseAddress!, targetChannels: cout, bias: biasPointer, relu: relu,
                                                        into: target, workspace: workspace)
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
        let plan = plan(height: h, width: w)
        // Every element of dx is written below; without an input gradient it is all zeros.
        var dx = plan.inputGradient == nil ? Tensor.zeros(x.shape) : Tensor.uninitialized(x.shape)
        withBackwardBuffers(x: x, dy: dy, dx: &dx) { b in
            // dW (and the bias gradient) first: as partials (HWIO then bias, one per part, added in
            // part order below), or added in place by Winograd. The pointwise and band passes
            // compute dX in the same sweep when the plan says so.
            let partials: [SendablePointer<Float>]
            switch plan.weightGradient {
            case .pointwise:
                partials = pointwiseBackward(b.x, gradient: b.dy, rows: n * h * w, kernel: b.kernel,
                                             inputGradient: plan.inputGradient == .pointwise ? b.dx : nil)
            case .direct:
                partials = DirectConvolution.filterGradient(b.x, gradient: b.dy, n: n, h: h, w: w, cin: cin, cout: cout,
                                                            isa: plan.directISA!, workspace: workspace)
            case .winogradF2, .winogradF4:
                partials = []  // the bias gradient too is added by weightGradient
                let tiling: Winograd.Tiling = plan.weightGradient == .winogradF4 ? .f4 : .f2
                let weightGradient = { (db: UnsafeMutablePointer<Float>?) in
                    Winograd.weightGradient(b.x, gradient: b.dy, n: n, h: h, w: w, cin: cin, cout: cout, kernelGradient: b.kernelGradient,
                                            biasGradient: db, tiling: tiling, workspace: self.workspace)
                }
                if let bias {
                    bias.grad.storage.withUnsafeMutableBufferPointer { weightGradient($0.baseAddress!) }
                } else {
                    weightGradient(nil)
                }
            case .rowIm2col:
                let byRows = plan.inputGradient == .rowIm2col
                let matrix = byRows ? RowConvolution.gradientMatrix(b.kernel, kh: kh, kw: kw, cin: cin, cout: cout) : [0]
                partials = matrix.withUnsafeBufferPointer { mb in
                    RowConvolution.backward(b.x, gradient: b.dy, n: n, h: h, w: w, cin: cin, cout: cout, kh: kh, kw: kw,
                                            gradientMatrix: mb.baseAddress!, inputGradient: byRows ? b.dx : nil, workspace: workspace)
                }
            }
            switch plan.inputGradient {
            case nil, .pointwise, .rowIm2col:
                break  // none, or computed with dW above
            case .direct:
                let rotated = DirectConvolution.inputGradientKernel(b.kernel, cin: cin, cout: cout)
                rotated.withUnsafeBufferPointer { rb in
                    DirectConvolution.convolve(b.dy, n: n, h: h, w: w, sourceChannels: cout, kernel: rb.baseAddress!,
                                               targetChannels: cin, bias: nil, relu: false, into: b.dx,
                                               isa: plan.directISA!, workspace: workspace)
                }
            case .winogradF2, .winogradF4:
                winogradInputGradient(b.dy, n: n, h: h, w: w, kernel: b.kernel, plan: plan, into: b.dx)
            }
            if plan.weightGradient == .rowIm2col {
                RowConvolution.accumulate(partials, into: b.kernelGradient, kh: kh, kw: kw, cin: cin, cout: cout)
            } else {
                for p in partials { for i in 0..<(kh * kw * cin * cout) { b.kernelGradient[i] += p.pointer[i] } }
            }
            if let bias {
                let k = kh * kw * cin
                bias.grad.storage.withUnsafeMutableBufferPointer { dbb in
                    for p in partials { for c in 0..<cout { dbb[c] += p.pointer[k * cout + c] } }
                }
            }
        }
        return dx
    }

    /// The tensors backward reads and writes, as pointers valid inside `withBackwardBuffers`.
    private struct BackwardBuffers {
        let x: UnsafePointer<Float>, dy: UnsafePointer<Float>, kernel: UnsafePointer<Float>
        let kernelGradient: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>
    }

    private func withBackwardBuffers(x: Tensor, dy: Tensor, dx: inout Tensor, _ body: (BackwardBuffers) -> Void) {
        dy.storage.withUnsafeBufferPointer { dyb in
            x.storage.withUnsafeBufferPointer { xb in
                kernel.value.storage.withUnsafeBufferPointer { kb in
                    kernel.grad.storage.withUnsafeMutableBufferPointer { dkb in
                        dx.storage.withUnsafeMutableBufferPointer { dxb in
                            body(BackwardBuffers(x: xb.baseAddress!, dy: dyb.baseAddress!, kernel: kb.baseAddress!,
                                                 kernelGradient: dkb.baseAddress!, dx: dxb.baseAddress!))
                        }
                    }
                }
            }
        }
    }

    /// dX as the Winograd convolution (`plan.inputGradient`'s tiling) of dY with the rotated kernel.
    private func winogradInputGradient(_ dy: UnsafePointer<Float>, n: Int, h: Int, w: Int, kernel: UnsafePointer<Float>,
                                       plan: ConvolutionPlan, into dx: UnsafeMutablePointer<Float>) {
        if plan.inputGradient == .winogradF4 {
            let matrices = WinogradF4.kernelMatrices(kernel, cin: inChannels, cout: outChannels, forInputGradient: true)
            matrices.withUnsafeBufferPointer { mb in
                WinogradF4.convolve(dy, n: n, h: h, w: w, sourceChannels: outChannels, matrices: mb.baseAddress!,
                                    targetChannels: inChannels, bias: nil, relu: false, into: dx,
                                    smallGemm: plan.inputGradientSmallGemm, workspace: workspace)
            }
        } else {
            let matrices = Winograd.kernelMatrices(kernel, cin: inChannels, cout: outChannels, forInputGradient: true)
            matrices.withUnsafeBufferPointer { mb in
                Winograd.convolve(dy, n: n, h: h, w: w, sourceChannels: outChannels, matrices: mb.baseAddress!,
                                  targetChannels: inChannels, bias: nil, relu: false, into: dx,
                                  smallGemm: plan.inputGradientSmallGemm, workspace: workspace)
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
