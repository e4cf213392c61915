import Engine
import Imaging

/// Loss and segmentation scores of a model on a set of samples, in inference mode.
public struct EvaluationResult: Codable, Sendable, Equatable {
    public var loss: Double
    public var dice: Double          // per-image mean (see SegmentationScores)
    public var iou: Double           // per-image mean
    public var dicePooled: Double
    public var iouPooled: Double
    public var images: Int
}

public enum Evaluation {
    /// `training: true` scores with batch statistics (used to compare against inference mode).
    public static func evaluate(_ model: UNet, on samples: [SegmentationSample], batchSize: Int,
                                loss: Loss = .bceDice, training: Bool = false) -> EvaluationResult {
        // Scoring with batch statistics must not move the running statistics it is compared with.
        let saved = training ? model.batchNorms.map { ($0.movingMean.value, $0.movingVariance.value) } : []
        defer {
            for (bn, stats) in zip(model.batchNorms, saved) { bn.movingMean.value = stats.0; bn.movingVariance.value = stats.1 }
        }
        var metrics = SegmentationMetrics()
        var lossSum = 0.0
        for range in Batching.ranges(count: samples.count, size: batchSize) {
            let (x, y) = Batching.batch(samples, range)
            let p = model.forward(x, training: training)
            lossSum += Double(loss.evaluate(probabilities: p, targets: y).loss) * Double(range.count)
            metrics.add(probabilities: p, targets: y)
        }
        let s = metrics.scores
        return EvaluationResult(loss: samples.isEmpty ? 0 : lossSum / Double(samples.count),
                                dice: s.dicePerImage, iou: s.iouPerImage,
                                dicePooled: s.dicePooled, iouPooled: s.iouPooled, images: s.images)
    }

    /// Probability maps `(s, s, 1)` for each sample.
    public static func predict(_ model: UNet, _ samples: [SegmentationSample], batchSize: Int) -> [Tensor] {
        var out: [Tensor] = []
        for range in Batching.ranges(count: samples.count, size: batchSize) {
            let p = model.forward(Batching.batch(samples, range).images, training: false)
            for i in 0..<range.count { out.append(p.images(i..<(i + 1)).reshaped(Array(p.shape.dropFirst()))) }
        }
        return out
    }
}

extension Evaluation {
    /// Each sample's image, true mask and predicted mask side by side, as `folder/NAME.png`.
    public static func writeOverlays(_ model: UNet, _ samples: [SegmentationSample], batchSize: Int, to folder: String) throws {
        try OutputFiles.makeDirectory(folder)
        for (sample, p) in zip(samples, predict(model, samples, batchSize: batchSize)) {
            try Overlay.writeSideBySide(to: "\(folder)/\(sample.name).png", image: sample.image, truth: sample.mask,
                                        predictions: [(label: "prediction", probabilities: p)])
        }
    }
}
