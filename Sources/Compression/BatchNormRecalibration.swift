import Engine

/// What a recalibration pass saw.
public struct RecalibrationReport: Codable, Sendable, Equatable {
    public var batches: Int
    public var images: Int
    /// BatchNorm layers whose statistics were replaced (all of them, or none when no data came).
    public var layers: Int
}

/// Sets every BatchNorm's running mean and variance to the exact statistics of a data set, with no
/// weight update: the cheap recovery after factorisation changed the activations (issue 8), and the
/// fix for moving averages that never converged on a tiny training set.
///
/// One pass, with batch statistics, as PyTorch's `swa_utils.update_bn` and "precise BN" do: every
/// batch runs a training-mode forward (so each BatchNorm normalises with that batch's own mean and
/// variance), and each BatchNorm accumulates exact sums of its inputs over all pixels of all batches
/// (Double); at the end its running mean and biased variance become those of the pooled data — a
/// cumulative average, not an exponential one, so every batch counts equally and the order does not
/// matter. What that means: a layer's statistics are gathered on inputs that upstream layers
/// normalised with per-batch statistics, not with the final running ones used at inference. With
/// batches of a few images or more the two agree closely; making them agree exactly would take one
/// pass per BatchNorm layer (depth times the cost), which the literature finds unnecessary.
///
/// Feed the training images without augmentation, in batches as large as memory allows. Weights,
/// gradients and the optimizer are untouched; only `moving_mean` / `moving_variance` change.
public enum BatchNormRecalibration {
    @discardableResult
    public static func run(model: UNet, batches: some Sequence<Tensor>) -> RecalibrationReport {
        let norms = model.batchNorms
        for bn in norms { bn.beginRecalibration() }
        var count = 0, images = 0
        for x in batches {
            _ = model.forward(x, training: true)
            count += 1
            images += x.batch
        }
        var updated = 0
        for bn in norms where bn.endRecalibration() { updated += 1 }
        return RecalibrationReport(batches: count, images: images, layers: updated)
    }
}
