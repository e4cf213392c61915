/// A named weight tensor with its gradient. Owned by one layer; the optimizer updates it in place.
///
/// `trainable == false` marks state that is saved but not optimised (BatchNorm moving statistics).
public final class Parameter {
    public let name: String
    public var value: Tensor
    public var grad: Tensor
    public let trainable: Bool

    public init(name: String, value: Tensor, trainable: Bool = true) {
        self.name = name
        self.value = value
        self.grad = Tensor.zeros(value.shape)
        self.trainable = trainable
    }

    public func zeroGrad() {
        grad.storage.withUnsafeMutableBufferPointer { g in
            g.update(repeating: 0)
        }
    }
}

/// A layer: forward keeps what backward needs; backward takes dL/dy, accumulates (+=) parameter
/// gradients and returns dL/dx. One forward must precede each backward.
public protocol Layer: AnyObject {
    var name: String { get }
    /// Every weight, trainable or not, in a stable order.
    var parameters: [Parameter] { get }
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
}

extension Layer {
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
    public var trainableParameterCount: Int {
        parameters.filter(\.trainable).reduce(0) { $0 + $1.value.count }
    }
}

/// A convolution slot in the U-Net: either a full `Conv2D` or a factorised pair.
/// The compression code swaps one for the other, so the U-Net holds this protocol.
public protocol ConvolutionLayer: Layer {
    var kernelHeight: Int { get }
    var kernelWidth: Int { get }
    var inChannels: Int { get }
    var outChannels: Int { get }
    /// Forward FLOPs (2 x multiply-adds) for one image of `height` x `width`.
    func flops(height: Int, width: Int) -> Int
    /// False for a network's first layer, whose input is data: backward then skips dL/dx and
    /// returns zeros in its place.
    var inputGradientNeeded: Bool { get set }
    /// The `Conv2D`s this layer runs, in order (all on the layer's image size): where its
    /// `ConvolutionPlan`s and `EngineChoices` live.
    var conv2DLayers: [Conv2D] { get }
    /// Inference of this convolution followed by `norm` (running statistics), as one layer where
    /// the layer can fold the normalisation into its weights. Keeps nothing for backward.
    func inferenceForward(_ x: Tensor, foldingIn norm: BatchNorm) -> Tensor
}

extension ConvolutionLayer {
    public func inferenceForward(_ x: Tensor, foldingIn norm: BatchNorm) -> Tensor {
        norm.forward(forward(x, training: false), training: false)
    }
}
