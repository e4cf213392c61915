/// Batch normalisation over the channel axis of NHWC input, as Keras's `BatchNormalization`.
///
/// Training: normalise with the batch's mean and biased variance over (n, h, w), and move the
/// running statistics: `moving = momentum * moving + (1 - momentum) * batch` (biased variance, as
/// Keras does). Inference: normalise with the running statistics. `y = gamma * xhat + beta`.
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

    // Kept by forward for backward: normalised input and 1/sqrt(var + eps) per channel.
    private var xhat: Tensor?
    private var invStd: [Float] = []
    private var lastWasTraining = true
    // Exact sums while recalibrating (Double: millions of pixels).
    private var recalibration: (count: Int, sum: [Double], sumSquares: [Double])?

    public init(name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3) {
        precondition(channels > 0, "BatchNorm \(name): channels must be positive")
        precondition(momentum >= 0 && momentum < 1, "BatchNorm \(name): momentum \(momentum) outside [0, 1)")
        self.name = name
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        gamma = Parameter(name: "\(name).gamma", value: Tensor(shape: [channels], repeating: 1))
        beta = Parameter(name: "\(name).beta", value: Tensor.zeros([channels]))
        movingMean = Parameter(name: "\(name).moving_mean", value: Tensor.zeros([channels]), trainable: false)
        movingVariance = Parameter(name: "\(name).moving_variance", value: Tensor(shape: [channels], repeating: 1),
                                   trainable: false)
    }

    public var parameters: [Parameter] { [gamma, beta, movingMean, movingVariance] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.count % channels == 0 && x.shape.last == channels,
                     "BatchNorm \(name): expected last axis \(channels), got \(x.shape)")
        let c = channels
        let rows = x.count / c
        lastWasTraining = training
        var mean = [Float](repeating: 0, count: c)
        var variance = [Float](repeating: 0, count: c)
        if training {
            var sum = [Double](repeating: 0, count: c)
            var sumSq = [Double](repeating: 0, count: c)
            x.storage.withUnsafeBufferPointer { xb in
                // Per-row float partials keep the inner loop vectorised; Double totals keep accuracy.
                var partial = [Float](repeating: 0, count: c)
                var partialSq = [Float](repeating: 0, count: c)
                let block = 64
                var r = 0
                while r < rows {
                    let end = min(rows, r + block)
                    for i in 0..<c { partial[i] = 0; partialSq[i] = 0 }
                    for rr in r..<end {
                        let row = xb.baseAddress! + rr * c
                        for i in 0..<c { let v = row[i]; partial[i] += v; partialSq[i] += v * v }
                    }
                    for i in 0..<c { sum[i] += Double(partial[i]); sumSq[i] += Double(partialSq[i]) }
                    r = end
                }
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
        invStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        var normalised = Tensor(shape: x.shape, storage: [Float](unsafeUninitializedCapacity: x.count) { _, n in n = x.count })
        var y = normalised
        x.storage.withUnsafeBufferPointer { xb in
            normalised.storage.withUnsafeMutableBufferPointer { nb in
                y.storage.withUnsafeMutableBufferPointer { yb in
                    let g = gamma.value.storage, b = beta.value.storage
                    for r in 0..<rows {
                        let xr = xb.baseAddress! + r * c, nr = nb.baseAddress! + r * c, yr = yb.baseAddress! + r * c
                        for i in 0..<c {
                            let v = (xr[i] - mean[i]) * invStd[i]
                            nr[i] = v
                            yr[i] = g[i] * v + b[i]
                        }
                    }
                }
            }
        }
        xhat = normalised
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let xhat else { preconditionFailure("BatchNorm \(name): backward before forward") }
        precondition(dy.shape == xhat.shape, "BatchNorm \(name): dy \(dy.shape) vs input \(xhat.shape)")
        let c = channels
        let rows = dy.count / c
        var dBeta = [Float](repeating: 0, count: c)
        var dGamma = [Float](repeating: 0, count: c)
        dy.storage.withUnsafeBufferPointer { db in
            xhat.storage.withUnsafeBufferPointer { hb in
                for r in 0..<rows {
                    let dr = db.baseAddress! + r * c, hr = hb.baseAddress! + r * c
                    for i in 0..<c { dBeta[i] += dr[i]; dGamma[i] += dr[i] * hr[i] }
                }
            }
        }
        for i in 0..<c { beta.grad.storage[i] += dBeta[i]; gamma.grad.storage[i] += dGamma[i] }
        var dx = Tensor(shape: dy.shape, storage: [Float](unsafeUninitializedCapacity: dy.count) { _, n in n = dy.count })
        let g = gamma.value.storage
        dy.storage.withUnsafeBufferPointer { db in
            xhat.storage.withUnsafeBufferPointer { hb in
                dx.storage.withUnsafeMutableBufferPointer { xb in
                    if lastWasTraining {
                        // dx = gamma * invStd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))
                        let scale = (0..<c).map { g[$0] * invStd[$0] }
                        let meanDBeta = dBeta.map { $0 / Float(rows) }
                        let meanDGamma = dGamma.map { $0 / Float(rows) }
                        for r in 0..<rows {
                            let dr = db.baseAddress! + r * c, hr = hb.baseAddress! + r * c, xr = xb.baseAddress! + r * c
                            for i in 0..<c { xr[i] = scale[i] * (dr[i] - meanDBeta[i] - hr[i] * meanDGamma[i]) }
                        }
                    } else {
                        // Running statistics are constants: dx = dy * gamma * invStd.
                        let scale = (0..<c).map { g[$0] * invStd[$0] }
                        for r in 0..<rows {
                            let dr = db.baseAddress! + r * c, xr = xb.baseAddress! + r * c
                            for i in 0..<c { xr[i] = dr[i] * scale[i] }
                        }
                    }
                }
            }
        }
        return dx
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
