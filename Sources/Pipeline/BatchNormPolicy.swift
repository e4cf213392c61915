import Foundation

/// How BatchNorm statistics stay meaningful on small data sets (issue: a Keras U-Net trained on 14
/// images at batch 4 — 4 steps per epoch — scored Dice 0.015 in inference mode against 0.835 with
/// batch statistics, because momentum 0.99 needs hundreds of steps to forget its initial values).
///
/// 1. Momentum adapts to the steps per epoch unless set: `min(0.99, 0.05^(1/steps))`, so the
///    initial statistics weigh at most 5% after one epoch (0.47 at 4 steps, 0.97 at 100, 0.99 from
///    about 300 steps on: Keras's default for large sets).
/// 2. When an epoch has fewer than `exactValidationBelowSteps` steps, the statistics are recalibrated
///    exactly on the training set before each validation pass, so validation loss (and with it early
///    stopping and the LR schedule) reflects the weights, not the lag of a moving average. Cost: one
///    forward pass over the training set per epoch, about a third of an epoch's compute — small,
///    since only small sets take this path.
/// 3. The final (best) model is recalibrated before it is saved and scored (`recalibrateBatchNorm`).
public enum BatchNormPolicy {
    public static let exactValidationBelowSteps = 32

    public static func momentum(stepsPerEpoch: Int, explicit: Float?) -> Float {
        if let explicit { return explicit }
        let adapted = Float(pow(0.05, 1.0 / Double(max(1, stepsPerEpoch))))
        return min(0.99, adapted)
    }
}

