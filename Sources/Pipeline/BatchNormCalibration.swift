import Compression
import Engine
import Imaging

/// Recalibrates BatchNorm statistics on samples (no augmentation, no weight update) through
/// `Compression.BatchNormRecalibration`, which documents the exact semantics.
public enum BatchNormCalibration {
    public static func recalibrate(_ model: UNet, on samples: [SegmentationSample], batchSize: Int) {
        guard !samples.isEmpty else { return }
        BatchNormRecalibration.run(model: model, batches: Batching.ranges(count: samples.count, size: batchSize).lazy.map {
            Batching.batch(samples, $0).images
        })
    }
}
