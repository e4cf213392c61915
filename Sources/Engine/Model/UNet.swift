/// The U-Net of the seed pipeline (the Keras reference model: same layers, names and parameter counts), for binary segmentation.
///
/// Input NHWC `(n, s, s, inputChannels)` with s a multiple of 2^depth; output `(n, s, s, 1)`,
/// probabilities after a sigmoid.
/// - Encoder level L (0..<depth): `ConvBlock enc{L}` (filters base*2^L), then MaxPool 2x2.
/// - Bottleneck: `ConvBlock bottleneck` (base*2^depth filters).
/// - Decoder level L (depth-1...0): `up{L}` ConvTranspose 2x2/2 to base*2^L filters, concat
///   `[upsampled, skip]`, `ConvBlock dec{L}`.
/// - Head: `head` Conv 1x1 to 1 channel, sigmoid.
/// Initialisation: 3x3 convolutions He normal (they feed ReLUs); transposed convolutions and the
/// head Glorot uniform (the Keras default); biases zero; BatchNorm gamma 1, beta 0.
public final class UNet {
    public let config: UNetConfig
    public let workspace: Workspace
    public let encoders: [ConvBlock]
    let pools: [MaxPool2D]
    public let bottleneck: ConvBlock
    /// `ups[L]` and `decoders[L]` belong to level L (run from depth-1 down to 0).
    public let ups: [ConvTranspose2D]
    public let decoders: [ConvBlock]
    public var head: any ConvolutionLayer
    let sigmoid = Sigmoid(name: "head_sigmoid")

    public init(config: UNetConfig, seed: UInt64, workspace: Workspace = Workspace()) {
        precondition(config.problem == nil, "UNet: \(config.problem ?? "")")
        self.config = config
        self.workspace = workspace
        var rng = SeededGenerator(seed: seed)
        var encoders: [ConvBlock] = []
        var pools: [MaxPool2D] = []
        var channels = config.inputChannels
        for level in 0..<config.depth {
            encoders.append(ConvBlock(prefix: "enc\(level)", inChannels: channels, filters: config.filters(level: level),
                                      momentum: config.bnMomentum, rng: &rng, workspace: workspace))
            pools.append(MaxPool2D(name: "pool\(level)"))
            channels = config.filters(level: level)
        }
        bottleneck = ConvBlock(prefix: "bottleneck", inChannels: channels, filters: config.bottleneckFilters,
                               momentum: config.bnMomentum, rng: &rng, workspace: workspace)
        channels = config.bottleneckFilters
        var ups = [ConvTranspose2D?](repeating: nil, count: config.depth)
        var decoders = [ConvBlock?](repeating: nil, count: config.depth)
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            let f = config.filters(level: level)
            ups[level] = ConvTranspose2D(name: "up\(level)", inChannels: channels, outChannels: f,
                                         initializer: .glorotUniform, rng: &rng, workspace: workspace)
            decoders[level] = ConvBlock(prefix: "dec\(level)", inChannels: 2 * f, filters: f,
                                        momentum: config.bnMomentum, rng: &rng, workspace: workspace)
            channels = f
        }
        head = Conv2D(name: "head", kernelSize: 1, inChannels: channels, outChannels: 1,
                      initializer: .glorotUniform, rng: &rng, workspace: workspace)
        // The image needs no gradient: the first convolution skips dL/dx.
        encoders[0].conv1.inputGradientNeeded = false
        self.encoders = encoders
        self.pools = pools
        self.ups = ups.map { $0! }
        self.decoders = decoders.map { $0! }
    }

    /// Every block in forward order (encoders, bottleneck, decoders from the deepest level).
    public var blocks: [ConvBlock] { encoders + [bottleneck] + decoders.reversed() }

    public var batchNorms: [BatchNorm] { blocks.flatMap(\.batchNorms) }

    /// Every convolution slot that compression may factorise, in forward order, with the head last.
    public var convolutions: [any ConvolutionLayer] { blocks.flatMap { [$0.conv1, $0.conv2] } + [head] }

    /// Every weight in a stable order (forward order of layers).
    public var parameters: [Parameter] {
        var result: [Parameter] = []
        for level in 0..<config.depth { result += encoders[level].layers.flatMap(\.parameters) }
        result += bottleneck.layers.flatMap(\.parameters)
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            result += ups[level].parameters + decoders[level].layers.flatMap(\.parameters)
        }
        return result + head.parameters
    }

    public var trainableParameters: [Parameter] { parameters.filter(\.trainable) }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
    public var trainableParameterCount: Int { trainableParameters.reduce(0) { $0 + $1.value.count } }

    /// Forward FLOPs (2 x multiply-adds of convolutions and transposed convolutions) per image.
    public func flopsPerImage(height: Int, width: Int) -> Int {
        var total = 0
        var (h, w) = (height, width)
        for level in 0..<config.depth {
            total += encoders[level].conv1.flops(height: h, width: w) + encoders[level].conv2.flops(height: h, width: w)
            h /= 2; w /= 2
        }
        total += bottleneck.conv1.flops(height: h, width: w) + bottleneck.conv2.flops(height: h, width: w)
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            total += ups[level].flops(height: h, width: w)
            h *= 2; w *= 2
            total += decoders[level].conv1.flops(height: h, width: w) + decoders[level].conv2.flops(height: h, width: w)
        }
        return total + head.flops(height: h, width: w)
    }

    /// Every convolution, with the image size it runs on for inputs of `height` x `width`, in
    /// network order (the walk of `forward`: each level halves the size, each up-sampling doubles it).
    public func convolutionSizes(height: Int, width: Int) -> [(layer: any ConvolutionLayer, height: Int, width: Int)] {
        var result: [(layer: any ConvolutionLayer, height: Int, width: Int)] = []
        var (h, w) = (height, width)
        for level in 0..<config.depth {
            result += [(encoders[level].conv1, h, w), (encoders[level].conv2, h, w)]
            h /= 2; w /= 2
        }
        result += [(bottleneck.conv1, h, w), (bottleneck.conv2, h, w)]
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            h *= 2; w *= 2
            result += [(decoders[level].conv1, h, w), (decoders[level].conv2, h, w)]
        }
        return result + [(head, h, w)]
    }

    /// The plan table: which algorithm each `Conv2D` runs, per pass, on inputs of `height` x `width`
    /// (recorded in a training run's metrics.json).
    public func convolutionPlans(height: Int, width: Int) -> [ConvolutionPlanRecord] {
        convolutionSizes(height: height, width: width).flatMap { entry in
            entry.layer.conv2DLayers.map { ConvolutionPlanRecord(layer: $0.name, plan: $0.plan(height: entry.height, width: entry.width)) }
        }
    }

    /// Every convolution's plans from now on are chosen by `choices` (for A/B measurements and tests;
    /// layers start with `EngineChoices.current`).
    public func setEngineChoices(_ choices: EngineChoices) {
        for layer in convolutions { for conv in layer.conv2DLayers { conv.choices = choices } }
    }

    /// Replace the convolution named `name` (e.g. "enc1_conv2") by `layer` with the same channels.
    public func replaceConvolution(named name: String, with layer: any ConvolutionLayer) {
        for block in blocks {
            if block.conv1.name == name { fit(block.conv1, layer); block.conv1 = layer; return }
            if block.conv2.name == name { fit(block.conv2, layer); block.conv2 = layer; return }
        }
        if head.name == name { fit(head, layer); head = layer; return }
        preconditionFailure("UNet.replaceConvolution: no convolution named \(name)")
    }

    /// Checks that `new` can take `old`'s slot and gives it the slot's settings.
    private func fit(_ old: any ConvolutionLayer, _ new: any ConvolutionLayer) {
        new.inputGradientNeeded = old.inputGradientNeeded
        if let choices = old.conv2DLayers.first?.choices { for conv in new.conv2DLayers { conv.choices = choices } }
        precondition(old.inChannels == new.inChannels && old.outChannels == new.outChannels
                     && old.kernelHeight == new.kernelHeight && old.kernelWidth == new.kernelWidth,
                     "UNet.replaceConvolution: \(new.name) does not fit the slot of \(old.name)")
    }

    /// When set, every layer call's wall time is added to it (see `LayerProfile`).
    public var profile: LayerProfile? {
        didSet { for block in blocks { block.profile = profile } }
    }


    /// Probabilities `(n, h, w, 1)` for a batch `x`. `training` selects batch statistics in BatchNorm.
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let multiple = 1 << config.depth
        precondition(x.rank == 4 && x.shape[3] == config.inputChannels
                     && x.shape[1] % multiple == 0 && x.shape[2] % multiple == 0,
                     "UNet: input \(x.shape) must be NHWC with \(config.inputChannels) channels and sides a multiple of \(multiple)")
        // Each decoder's input joins the upsampled tensor (first) and the encoder's skip (second), as
        // Keras concatenates them. Both are written in place: the encoder's skip when it is made (the
        // pool reads it from there), the transposed convolution's half later.
        var joins: [Tensor] = []
        var h = x
        for level in 0..<config.depth {
            let (upChannels, filters) = (ups[level].outChannels, config.filters(level: level))
            var joined = Tensor.uninitialized([h.shape[0], h.shape[1], h.shape[2], upChannels + filters])
            encoders[level].forward(h, training: training, into: &joined, channelOffset: upChannels)
            h = profile.time("pool\(level) forward") { pools[level].forward(joined, channelOffset: upChannels, channels: filters) }
            joins.append(joined)
        }
        h = bottleneck.forward(h, training: training)
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            // Taken out of the array first, so that writing into it does not copy it.
            var joined = joins[level]
            joins[level] = Tensor.zeros([0])
            profile.time("up\(level) forward") { ups[level].forward(h, training: training, into: &joined, channelOffset: 0) }
            h = decoders[level].forward(joined, training: training)
        }
        let logits = profile.time("head forward") { head.forward(h, training: training) }
        return profile.time("sigmoid forward") { sigmoid.forward(logits, training: training) }
    }

    /// Backpropagates dLoss/dProbabilities through the last forward; accumulates every gradient.
    @discardableResult
    public func backward(_ dProbabilities: Tensor) -> Tensor {
        let dLogits = profile.time("sigmoid backward") { sigmoid.backward(dProbabilities) }
        var d = profile.time("head backward") { head.backward(dLogits) }
        // Each decoder's input gradient, kept until its skip's encoder level: the skip's part is read
        // from it in place.
        var dJoined = [Tensor?](repeating: nil, count: config.depth)
        for level in 0..<config.depth {
            let dCat = decoders[level].backward(d)
            dJoined[level] = dCat
            d = profile.time("up\(level) backward") { ups[level].backward(dCat, channelOffset: 0) }
        }
        d = bottleneck.backward(d)
        for level in stride(from: config.depth - 1, through: 0, by: -1) {
            // The skip feeds both the pool and the decoder: gradients add, in the pool's pass.
            d = profile.time("pool\(level) backward") {
                pools[level].backward(d, adding: dJoined[level]!, channelOffset: ups[level].outChannels)
            }
            dJoined[level] = nil
            d = encoders[level].backward(d)
        }
        return d
    }

    public func zeroGradients() { for p in trainableParameters { p.zeroGrad() } }
}
