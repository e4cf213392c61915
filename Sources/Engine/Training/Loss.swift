import CKernels
/// Segmentation losses on probabilities `p` and binary targets `y` of the same shape.
///
/// Exactly as the Keras reference (Tests/Fixtures/golden/README.md):
/// ```
/// p_c  = clip(p, 1e-7, 1 - 1e-7)
/// bce  = mean over all elements of -(y log p_c + (1 - y) log(1 - p_c))
/// dice = (2 sum(y p) + 1) / (sum(y) + sum(p) + 1)      sums over the whole batch
/// ```
/// The gradient of the clip is zero outside the clip range (as TensorFlow's `clip_by_value`).
public enum Loss: String, Codable, Sendable, CaseIterable {
    case bce
    case dice
    /// bce + (1 - dice), the default.
    case bceDice = "bce+dice"

    public static let clipEpsilon: Float = 1e-7
    public static let diceSmooth: Double = 1

    /// The loss value and dLoss/dp.
    public func evaluate(probabilities p: Tensor, targets y: Tensor) -> (loss: Float, gradient: Tensor) {
        precondition(p.shape == y.shape, "Loss: predictions \(p.shape) and targets \(y.shape) differ")
        let n = p.count
        var grad = Tensor.uninitialized(p.shape)
        let eps = Loss.clipEpsilon
        // The sums in C (CKernels: float within blocks of 64, double across; logs by a polynomial
        // of about 1 ulp, vectorised).
        var sums = [Double](repeating: 0, count: 4)
        p.storage.withUnsafeBufferPointer { pb in
            y.storage.withUnsafeBufferPointer { yb in
                sums.withUnsafeMutableBufferPointer { sb in
                    ckernels_loss_sums(pb.baseAddress!, yb.baseAddress!, n, eps, self == .dice ? 0 : 1, sb.baseAddress!)
                }
            }
        }
        let (intersection, sumY, sumP) = (sums[0], sums[1], sums[2])
        let bce = sums[3] / Double(n)
        let denominator = sumY + sumP + Loss.diceSmooth
        let dice = (2 * intersection + Loss.diceSmooth) / denominator
        grad.storage.withUnsafeMutableBufferPointer { gb in
            p.storage.withUnsafeBufferPointer { pb in
                y.storage.withUnsafeBufferPointer { yb in
                    let invN = 1 / Float(n)
                    // d(1 - dice)/dp_i = -(2 y_i D - (2I + s)) / D^2
                    let a = Float(2 / denominator)
                    let b = Float((2 * intersection + Loss.diceSmooth) / (denominator * denominator))
                    ckernels_loss_gradient(pb.baseAddress!, yb.baseAddress!, n, eps, self == .dice ? 0 : 1, invN,
                                           self == .bce ? 0 : 1, a, b, gb.baseAddress!)
                }
            }
        }
        let loss: Double
        switch self {
        case .bce: loss = bce
        case .dice: loss = 1 - dice
        case .bceDice: loss = bce + (1 - dice)
        }
        return (Float(loss), grad)
    }
}
