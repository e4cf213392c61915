import Compression
import Engine
import Imaging

extension BatchNormRecalibration {
    /// `run(model:batches:)` over a sample set: its images in order, `batchSize` at a time, without
    /// augmentation (nothing happens for an empty set).
    public static func run(model: UNet, samples: [SegmentationSample], batchSize: Int) {
        guard !samples.isEmpty else { return }
        run(model: model, batches: Batching.ranges(count: samples.count, size: batchSize).lazy.map {
            Batching.batch(samples, $0).images
        })
    }
}
