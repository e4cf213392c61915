/// A `kh x kw` convolution factorised by spatial SVD (AIMET's): `kh x 1, cin -> r` (no bias), then
/// `1 x kw, r -> cout` (bias).
///
/// With `W` read as the `(kh*cin) x (kw*cout)` matrix `U S Vᵀ`, the vertical kernel is
/// `U_r sqrt(S_r)` and the horizontal one `sqrt(S_r) V_rᵀ`; at full rank the pair reproduces the
/// layer. Saved as `NAME.v.kernel` (kh x 1), `NAME.h.kernel` (1 x kw), `NAME.h.bias`; the rank is
/// the vertical kernel's output channel count.
public final class SpatialSVDConv2D: ConvolutionLayer {
    public let name: String
    public let vertical: Conv2D
    public let horizontal: Conv2D

    public init(name: String, verticalKernel: Tensor, horizontalKernel: Tensor, bias: Tensor?,
                workspace: Workspace = Workspace()) {
        precondition(verticalKernel.rank == 4 && horizontalKernel.rank == 4
                     && verticalKernel.shape[1] == 1 && horizontalKernel.shape[0] == 1
                     && verticalKernel.shape[3] == horizontalKernel.shape[2],
                     "SpatialSVDConv2D \(name): kernels \(verticalKernel.shape) and \(horizontalKernel.shape) do not chain")
        self.name = name
        vertical = Conv2D(name: "\(name).v", kernel: verticalKernel, bias: nil, workspace: workspace)
        horizontal = Conv2D(name: "\(name).h", kernel: horizontalKernel, bias: bias, workspace: workspace)
    }

    public var rank: Int { vertical.outChannels }
    public var kernelHeight: Int { vertical.kernelHeight }
    public var kernelWidth: Int { horizontal.kernelWidth }
    public var inChannels: Int { vertical.inChannels }
    public var outChannels: Int { horizontal.outChannels }
    public var parameters: [Parameter] { vertical.parameters + horizontal.parameters }
    public var conv2DLayers: [Conv2D] { [vertical, horizontal] }
    public var inputGradientNeeded: Bool {
        get { vertical.inputGradientNeeded }
        set { vertical.inputGradientNeeded = newValue }
    }

    public func flops(height: Int, width: Int) -> Int {
        vertical.flops(height: height, width: width) + horizontal.flops(height: height, width: width)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        horizontal.forward(vertical.forward(x, training: training), training: training)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        vertical.backward(horizontal.backward(dy))
    }

    /// The normalisation folds into the horizontal convolution.
    public func inferenceForward(_ x: Tensor, foldingIn norm: BatchNorm) -> Tensor {
        horizontal.inferenceForward(vertical.forward(x, training: false), foldingIn: norm)
    }
}
