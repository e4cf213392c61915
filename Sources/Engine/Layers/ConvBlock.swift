/// (Conv 3x3 -> BatchNorm -> ReLU) x 2, the U-Net's repeated block. Names follow the Keras
/// reference: `<prefix>_conv1`, `<prefix>_bn1`, `<prefix>_conv2`, `<prefix>_bn2`.
/// The convolutions are variables so compression can swap in factorised layers.
public final class ConvBlock {
    public var conv1: any ConvolutionLayer
    public let bn1: BatchNorm
    public var conv2: any ConvolutionLayer
    public let bn2: BatchNorm

    public init(prefix: String, inChannels: Int, filters: Int, momentum: Float,
                rng: inout SeededGenerator, workspace: Workspace) {
        conv1 = Conv2D(name: "\(prefix)_conv1", kernelSize: 3, inChannels: inChannels, outChannels: filters,
                       initializer: .heNormal, rng: &rng, workspace: workspace)
        // Each BatchNorm applies the block's ReLU in the same pass (one trip through memory, not two).
        bn1 = BatchNorm(name: "\(prefix)_bn1", channels: filters, momentum: momentum, reluAfter: true)
        conv2 = Conv2D(name: "\(prefix)_conv2", kernelSize: 3, inChannels: filters, outChannels: filters,
                       initializer: .heNormal, rng: &rng, workspace: workspace)
        bn2 = BatchNorm(name: "\(prefix)_bn2", channels: filters, momentum: momentum, reluAfter: true)
    }

    public var layers: [any Layer] { [conv1, bn1, conv2, bn2] }
    /// Set by the model when it is being profiled.
    var profile: LayerProfile?
    /// True when the last forward was an inference one, which keeps nothing for backward.
    private var foldedLastForward = false
    public var batchNorms: [BatchNorm] { [bn1, bn2] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        foldedLastForward = !training
        if !training {
            // Inference: each BatchNorm (and its ReLU) folds into the convolution before it.
            let h = profile.time("\(conv1.name) forward") { conv1.inferenceForward(x, foldingIn: bn1) }
            return profile.time("\(conv2.name) forward") { conv2.inferenceForward(h, foldingIn: bn2) }
        }
        var h = x
        for layer in layers { h = profile.time("\(layer.name) forward") { layer.forward(h, training: training) } }
        return h
    }

    /// Forward into channels `channelOffset ..< channelOffset + filters` of `target` (the U-Net's
    /// encoder writing its skip into the decoder's joined input). In training the second
    /// BatchNorm writes there itself; in inference the folded result is copied in.
    public func forward(_ x: Tensor, training: Bool, into target: inout Tensor, channelOffset: Int) {
        guard training else {
            let y = forward(x, training: false)
            profile.time("\(conv2.name) skip copy") { Concat.copy(y, into: &target, channelOffset: channelOffset) }
            return
        }
        foldedLastForward = false
        var h = x
        for layer in layers.dropLast() { h = profile.time("\(layer.name) forward") { layer.forward(h, training: true) } }
        profile.time("\(bn2.name) forward") { bn2.forward(h, training: true, into: &target, channelOffset: channelOffset) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(!foldedLastForward, "ConvBlock \(conv1.name): backward after an inference forward (it keeps nothing for backward)")
        var d = dy
        for layer in layers.reversed() { d = profile.time("\(layer.name) backward") { layer.backward(d) } }
        return d
    }
}
