import CKernels
/// Batch normalisation over the channel axis of NHWC input, as Keras's `BatchNormalization`.
///
/// Training: normalise with the batch's mean and biased variance over (n, h, w), and move the
/// running statistics: `moving = momentum * moving + (1 - momentum) * batch` (biased variance, as
/// Keras does). Inference: normalise with the running statistics. `y = gamma * xhat + beta`.
///
/// With `reluAfter`, the layer is BatchNorm followed by ReLU in one pass over memory each way
/// (the U-Net's blocks use it): `y = max(0, gamma * xhat + beta)`.
///
/// Recalibration (`beginRecalibration` / `endRecalibration`): while on, training-mode forwards also
/// add to exact sums over every pixel seen, and the end sets the running mean and variance to the
/// mean and (biased) variance of all that data: a cumulative average, not an exponential one.
public final class BatchNorm: Layer {
    public let name: String
    public let gamma: Parameter
    public let beta: Parameter
    public let movingMean: Parameter
    public let movingVariance: Parameter
    public let channels: Int
    public var momentum: Float
    public let epsilon: Float
    /// True when a ReLU is applied to the output in the same pass.
    public let reluAfter: Bool

    // Kept by forward for backward: the input, and the mean and 1/sqrt(var + eps) per channel.
    // Backward recomputes xhat, and with the ReLU the sign of the output (its mask), from the
    // input with the same operations (bit-identical), which costs less than reading them back.
    private var input: Tensor?
    private var mean: [Float] = []
    private var invStd: [Float] = []
    private var lastWasTraining = true
    // Exact sums while recalibrating (Double: millions of pixels).
    private var recalibration: (count: Int, sum: [Double], sumSquares: [Double])?

    public init(name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3, reluAfter: Bool = false) {
        precondition(channels > 0, "BatchNorm \(name): channels must be positive")
        precondition(momentum >= 0 && momentum < 1, "BatchNorm \(name): momentum \(momentum) outside [0, 1)")
        self.name = name
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        self.reluAfter = reluAfter
        gamma = Parameter(name: "\(name).gamma", value: Tensor(shape: [channels], repeating: 1))
        beta = Parameter(name: "\(name).beta", value: Tensor.zeros([channels]))
        movingMean = Parameter(name: "\(name).moving_mean", value: Tensor.zeros([channels]), trainable: false)
        movingVariance = Parameter(name: "\(name).moving_variance", value: Tensor(shape: [channels], repeating: 1),
                                   trainable: false)
    }

    public var parameters: [Parameter] { [gamma, beta, movingMean, movingVariance] }

    /// Inference as a per-channel affine map, `y = scale * x + shift` (then the ReLU when
    /// `reluAfter`), for folding into the convolution before it. The forward pass computes
    /// `gamma * ((x - mean) * invStd) + beta`; folded, the rounding differs by a few ulps.
    public var inferenceAffine: (scale: [Float], shift: [Float]) {
        let g = gamma.value.storage, b = beta.value.storage
        let mean = movingMean.value.storage, variance = movingVariance.value.storage
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for i in 0..<channels {
            scale[i] = g[i] * (1 / (variance[i] + epsilon).squareRoot())
            shift[i] = b[i] - mean[i] * scale[i]
        }
        return (scale, shift)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = Tensor.uninitialized(x.shape)
        forward(x, training: training, into: &y, channelOffset: 0)
        return y
    }

    /// Forward into channels `channelOffset ..< channelOffset + channels` of `target`, shaped as
    /// `x` but wider: the U-Net's encoder writes its skip straight into the decoder's joined input
    /// (no copy; backward never reads the output, see `input`).
    public func forward(_ x: Tensor, training: Bool, into target: inout Tensor, channelOffset: Int) {
        precondition(x.count % channels == 0 && x.shape.last == channels,
                     "BatchNorm \(name): expected last axis \(channels), got \(x.shape)")
        let stride = target.shape.last ?? 0
        precondition(target.shape.dropLast() == x.shape.dropLast() && channelOffset >= 0 && channelOffset + channels <= stride,
                     "BatchNorm \(name): cannot write \(channels) channels at \(channelOffset) of \(target.shape)")
        let c = channels
        let rows = x.count / c
        lastWasTraining = training
        var mean = [Float](repeating: 0, count: c)
        var variance = [Float](repeating: 0, count: c)
        if training {
            let (sum, sumSq) = x.storage.withUnsafeBufferPointer { xb in
                BatchNorm.channelSums(SendablePointer(xb.baseAddress!), rows: rows, channels: c)
            }
            for i in 0..<c {
                let m = sum[i] / Double(rows)
                mean[i] = Float(m)
                variance[i] = Float(max(0, sumSq[i] / Double(rows) - m * m))
            }
            if var acc = recalibration {
                acc.count += rows
                for i in 0..<c { acc.sum[i] += sum[i]; acc.sumSquares[i] += sumSq[i] }
                recalibration = acc
            } else {
                for i in 0..<c {
                    movingMean.value.storage[i] = momentum * movingMean.value.storage[i] + (1 - momentum) * mean[i]
                    movingVariance.value.storage[i] = momentum * movingVariance.value.storage[i] + (1 - momentum) * variance[i]
                }
            }
        } else {
            mean = movingMean.value.storage
            variance = movingVariance.value.storage
        }
        self.mean = mean
        invStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        let relu = reluAfter
        let constants = ChannelConstants([invStd, mean, gamma.value.storage, beta.value.storage])
        defer { constants.release() }
        x.storage.withUnsafeBufferPointer { xb in
            target.storage.withUnsafeMutableBufferPointer { yb in
                let (xp, yp) = (SendablePointer(xb.baseAddress!), SendablePointer(yb.baseAddress! + channelOffset))
                Parallel.rows(rows, minimumPerPart: Parallel.elementwiseMinimum / c) { range in
                    ckernels_bn_normalize(xp.pointer + range.lowerBound * c, range.count, c, constants[1], constants[0], constants[2],
                                          constants[3], relu ? 1 : 0, yp.pointer + range.lowerBound * stride, stride)
                }
            }
        }
        input = x
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm \(name): backward before forward") }
        precondition(dy.shape == x.shape, "BatchNorm \(name): dy \(dy.shape) vs input \(x.shape)")
        let c = channels
        let rows = dy.count / c
        // With the ReLU, the gradient reaching the normalisation is dy where the output is positive
        // (recomputed from the input, gamma and beta: see `ckernels_bn_gradient_sums`).
        let normalisation = ChannelConstants([invStd, mean, gamma.value.storage, beta.value.storage])
        defer { normalisation.release() }
        // dBeta = sum(dy), dGamma = sum(dy * xhat)
        let (dBetaSum, dGammaSum) = dy.storage.withUnsafeBufferPointer { db in
            x.storage.withUnsafeBufferPointer { xb in
                BatchNorm.gradientSums(SendablePointer(db.baseAddress!), input: SendablePointer(xb.baseAddress!),
                                       normalisation: normalisation, relu: reluAfter, rows: rows, channels: c)
            }
        }
        let dBeta = dBetaSum.map { Float($0) }, dGamma = dGammaSum.map { Float($0) }
        for i in 0..<c { beta.grad.storage[i] += dBeta[i]; gamma.grad.storage[i] += dGamma[i] }
        var dx = Tensor.uninitialized(dy.shape)
        let g = gamma.value.storage
        let training = lastWasTraining
        // Training: dx = gamma * invStd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)).
        // Inference (running statistics are constants): dx = dy * gamma * invStd.
        let constants = ChannelConstants([(0..<c).map { g[$0] * invStd[$0] },
                                          dBeta.map { training ? $0 / Float(rows) : 0 },
                                          dGamma.map { training ? $0 / Float(rows) : 0 }])
        defer { constants.release() }
        let relu: Int32 = reluAfter ? 1 : 0
        dy.storage.withUnsafeBufferPointer { db in
            x.storage.withUnsafeBufferPointer { xb in
                dx.storage.withUnsafeMutableBufferPointer { outb in
                    let (dp, xp, outp) = (SendablePointer(db.baseAddress!), SendablePointer(xb.baseAddress!), SendablePointer(outb.baseAddress!))
                    Parallel.rows(rows, minimumPerPart: Parallel.elementwiseMinimum / c) { range in
                        let o = range.lowerBound * c
                        ckernels_bn_input_gradient(dp.pointer + o, xp.pointer + o, normalisation[2], normalisation[3], relu,
                                                   normalisation[1], normalisation[0], constants[0], constants[1], constants[2],
                                                   range.count, c, outp.pointer + o)
                    }
                }
            }
        }
        return dx
    }

    /// Per-channel sums of x and x^2 over `rows` rows of `channels`.
    static func channelSums(_ x: SendablePointer<Float>, rows: Int, channels c: Int) -> (sum: [Double], squares: [Double]) {
        reduceChannels(rows: rows, channels: c) { range, first, second, scratch in
            ckernels_bn_moments(x.pointer + range.lowerBound * c, range.count, c, first, second, scratch)
        }
    }

    /// Per-channel sums of d and d * xhat, where xhat = (input - mean) * invStd and d is `dy`, with
    /// `relu` masked to zero wherever gamma * xhat + beta is not positive; `normalisation` =
    /// [invStd, mean, gamma, beta].
    static func gradientSums(_ dy: SendablePointer<Float>, input: SendablePointer<Float>, normalisation: ChannelConstants,
                             relu: Bool, rows: Int, channels c: Int) -> (sum: [Double], products: [Double]) {
        reduceChannels(rows: rows, channels: c) { range, first, second, scratch in
            let o = range.lowerBound * c
            ckernels_bn_gradient_sums(dy.pointer + o, input.pointer + o, normalisation[2], normalisation[3], relu ? 1 : 0,
                                      normalisation[1], normalisation[0], range.count, c, first, second, scratch)
        }
    }

    /// Per-channel sums of two quantities over `rows` rows, split across threads: `sums` adds a
    /// range of rows into two Double totals (in C, CKernels: float within blocks of 64 rows, Double
    /// across them), and the parts are added in a fixed order (deterministic).
    private static func reduceChannels(rows: Int, channels c: Int,
                                       _ sums: @Sendable (Range<Int>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                          UnsafeMutablePointer<Float>) -> Void) -> ([Double], [Double]) {
        let parts = Parallel.parts(rows: rows, minimumPerPart: max(64, Parallel.elementwiseMinimum / c))
        let totals = UnsafeMutablePointer<Double>.allocate(capacity: parts * 2 * c)
        totals.initialize(repeating: 0, count: parts * 2 * c)
        defer { totals.deallocate() }
        let out = SendablePointer(totals)
        Parallel.forEach(parts) { part in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * c)
            defer { scratch.deallocate() }
            let first = out.pointer + part * 2 * c
            sums(Parallel.slice(rows, parts: parts, part), first, first + c, scratch)
        }
        var first = [Double](repeating: 0, count: c), second = [Double](repeating: 0, count: c)
        for part in 0..<parts {
            for i in 0..<c { first[i] += totals[part * 2 * c + i]; second[i] += totals[part * 2 * c + c + i] }
        }
        return (first, second)
    }

    /// Start collecting exact statistics; training-mode forwards stop moving the running averages.
    public func beginRecalibration() {
        recalibration = (0, [Double](repeating: 0, count: channels), [Double](repeating: 0, count: channels))
    }

    /// Set the running statistics to the exact mean and biased variance of everything seen since
    /// `beginRecalibration`. Returns false (and changes nothing) when no data was seen.
    @discardableResult
    public func endRecalibration() -> Bool {
        defer { recalibration = nil }
        guard let acc = recalibration, acc.count > 0 else { return false }
        for i in 0..<channels {
            let m = acc.sum[i] / Double(acc.count)
            movingMean.value.storage[i] = Float(m)
            movingVariance.value.storage[i] = Float(max(0, acc.sumSquares[i] / Double(acc.count) - m * m))
        }
        return true
    }
}

/// Per-channel constants copied into one buffer that parallel parts can read (arrays cannot be
/// captured by reference into `@Sendable` closures without a copy each). Release after use.
struct ChannelConstants: @unchecked Sendable {
    private let base: UnsafeMutablePointer<Float>
    private let length: Int

    init(_ rows: [[Float]]) {
        length = rows.first?.count ?? 0
        base = .allocate(capacity: max(1, rows.count * length))
        for (index, row) in rows.enumerated() {
            precondition(row.count == length, "ChannelConstants: rows of different lengths")
            (base + index * length).initialize(from: row, count: length)
        }
    }

    subscript(row: Int) -> UnsafeMutablePointer<Float> { base + row * length }

    func release() { base.deallocate() }
}
