/// A convolution factorised into two: `kh x kw, cin -> r` (no bias) then `1x1, r -> cout` (bias).
///
/// With the original kernel read as `W = U S V^T` ((kh*kw*cin) x cout), the first kernel is
/// `U_r sqrt(S_r)` and the second `sqrt(S_r) V_r^T`; at full rank the pair reproduces the original
/// layer. It is an ordinary trainable layer (forward, backward, saved tensors `NAME.a.kernel`,
/// `NAME.b.kernel`, `NAME.b.bias`), so a compressed model fine-tunes and loads like any other; the
/// rank is the first kernel's output channel count, so the saved file describes itself. It lives in
/// the engine, beside `Conv2D`, so that any model file loads without the compression code.
public final class LowRankConv2D: ConvolutionLayer {
    public let name: String
    public let first: Conv2D
    public let second: Conv2D

    public init(name: String, firstKernel: Tensor, secondKernel: Tensor, bias: Tensor?,
                workspace: Workspace = Workspace()) {
        precondition(firstKernel.rank == 4 && secondKernel.rank == 4
                     && secondKernel.shape[0] == 1 && secondKernel.shape[1] == 1
                     && firstKernel.shape[3] == secondKernel.shape[2],
                     "LowRankConv2D \(name): kernels \(firstKernel.shape) and \(secondKernel.shape) do not chain")
        self.name = name
        first = Conv2D(name: "\(name).a", kernel: firstKernel, bias: nil, workspace: workspace)
        second = Conv2D(name: "\(name).b", kernel: secondKernel, bias: bias, workspace: workspace)
    }

    public var rank: Int { first.outChannels }
    public var kernelHeight: Int { first.kernelHeight }
    public var kernelWidth: Int { first.kernelWidth }
    public var inChannels: Int { first.inChannels }
    public var outChannels: Int { second.outChannels }
    public var parameters: [Parameter] { first.parameters + second.parameters }
    public var conv2DLayers: [Conv2D] { [first, second] }
    public var inputGradientNeeded: Bool {
        get { first.inputGradientNeeded }
        set { first.inputGradientNeeded = newValue }
    }

    public func flops(height: Int, width: Int) -> Int {
        first.flops(height: height, width: width) + second.flops(height: height, width: width)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        second.forward(first.forward(x, training: training), training: training)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        first.backward(second.backward(dy))
    }

    /// The normalisation folds into the second (1x1) convolution.
    public func inferenceForward(_ x: Tensor, foldingIn norm: BatchNorm) -> Tensor {
        second.inferenceForward(first.forward(x, training: false), foldingIn: norm)
    }
}
