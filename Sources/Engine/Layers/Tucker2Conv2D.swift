/// A convolution factorised by Tucker-2 into three: `1x1, cin -> r1` (no bias), a `kh x kw` core
/// `r1 -> r2` (no bias), then `1x1, r2 -> cout` (bias).
///
/// The kernel `W` (HWIO) is approximated by `core ×_cin U1 ×_cout U2`: the first 1x1 projects the
/// input channels onto `U1` (cin x r1), the core mixes space, the last 1x1 maps back through `U2ᵀ`
/// (r2 x cout). Saved as `NAME.t1.kernel`, `NAME.core.kernel`, `NAME.t2.kernel`, `NAME.t2.bias`; the
/// ranks are the kernels' channel counts, so the file describes itself and loads without the
/// compression code. An ordinary trainable layer, like `LowRankConv2D`.
public final class Tucker2Conv2D: ConvolutionLayer {
    public let name: String
    public let first: Conv2D
    public let core: Conv2D
    public let last: Conv2D

    public init(name: String, firstKernel: Tensor, coreKernel: Tensor, lastKernel: Tensor, bias: Tensor?,
                workspace: Workspace = Workspace()) {
        precondition(firstKernel.rank == 4 && coreKernel.rank == 4 && lastKernel.rank == 4
                     && firstKernel.shape[0] == 1 && firstKernel.shape[1] == 1
                     && lastKernel.shape[0] == 1 && lastKernel.shape[1] == 1
                     && firstKernel.shape[3] == coreKernel.shape[2] && coreKernel.shape[3] == lastKernel.shape[2],
                     "Tucker2Conv2D \(name): kernels \(firstKernel.shape), \(coreKernel.shape), \(lastKernel.shape) do not chain")
        self.name = name
        first = Conv2D(name: "\(name).t1", kernel: firstKernel, bias: nil, workspace: workspace)
        core = Conv2D(name: "\(name).core", kernel: coreKernel, bias: nil, workspace: workspace)
        last = Conv2D(name: "\(name).t2", kernel: lastKernel, bias: bias, workspace: workspace)
    }

    /// The input-channel rank (`r1`) and the output-channel rank (`r2`).
    public var inputRank: Int { first.outChannels }
    public var outputRank: Int { core.outChannels }
    public var kernelHeight: Int { core.kernelHeight }
    public var kernelWidth: Int { core.kernelWidth }
    public var inChannels: Int { first.inChannels }
    public var outChannels: Int { last.outChannels }
    public var parameters: [Parameter] { first.parameters + core.parameters + last.parameters }
    public var conv2DLayers: [Conv2D] { [first, core, last] }
    public var inputGradientNeeded: Bool {
        get { first.inputGradientNeeded }
        set { first.inputGradientNeeded = newValue }
    }

    public func flops(height: Int, width: Int) -> Int {
        first.flops(height: height, width: width) + core.flops(height: height, width: width)
            + last.flops(height: height, width: width)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        last.forward(core.forward(first.forward(x, training: training), training: training), training: training)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        first.backward(core.backward(last.backward(dy)))
    }

    /// The normalisation folds into the last (1x1) convolution.
    public func inferenceForward(_ x: Tensor, foldingIn norm: BatchNorm) -> Tensor {
        last.inferenceForward(core.forward(first.forward(x, training: false), training: false), foldingIn: norm)
    }
}
