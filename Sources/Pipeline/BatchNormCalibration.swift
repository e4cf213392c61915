import Engine
import Imaging

/// Sets every BatchNorm's running mean and variance to the exact statistics of its input over
/// `samples` (no augmentation, no weight update). One pass in training mode: each layer normalises
/// with its batch's statistics while its sums accumulate (as torch's `update_bn`), so the result is
/// exact for each layer given the layers before it as they behave in training.
public enum BatchNormCalibration {
    public static func recalibrate(_ model: UNet, on samples: [SegmentationSample], batchSize: Int) {
        guard !samples.isEmpty else { return }
        for bn in model.batchNorms { bn.beginRecalibration() }
        for range in Batching.ranges(count: samples.count, size: batchSize) {
            _ = model.forward(Batching.batch(samples, range).images, training: true)
        }
        for bn in model.batchNorms { bn.endRecalibration() }
    }
}
