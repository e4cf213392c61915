/// Dice and IoU of binary masks at a probability threshold (default 0.5).
///
/// Two ways to average, both kept:
/// - `pooled`: true/false positives summed over every pixel of every image, one ratio at the end
///   (large lesions weigh more);
/// - `perImage`: the ratio for each image, then the mean over images (each image counts once).
///   An image whose truth and prediction are both empty scores 1 (nothing to find, nothing found).
/// The training log and reports quote the per-image mean, as most segmentation papers do.
public struct SegmentationScores: Codable, Sendable, Equatable {
    public var dicePerImage: Double
    public var iouPerImage: Double
    public var dicePooled: Double
    public var iouPooled: Double
    public var images: Int
}

public struct SegmentationMetrics {
    public let threshold: Float
    private var tp: [Double] = [], fp: [Double] = [], fn: [Double] = []

    public init(threshold: Float = 0.5) { self.threshold = threshold }

    /// Adds a batch of probabilities and binary targets, both `(n, h, w, 1)`.
    public mutating func add(probabilities p: Tensor, targets y: Tensor) {
        precondition(p.shape == y.shape && p.rank == 4, "SegmentationMetrics: shapes \(p.shape) and \(y.shape)")
        let per = p.count / p.shape[0]
        p.storage.withUnsafeBufferPointer { pb in
            y.storage.withUnsafeBufferPointer { yb in
                for img in 0..<p.shape[0] {
                    var t = 0, f = 0, m = 0
                    for i in (img * per)..<((img + 1) * per) {
                        let predicted = pb[i] > threshold, truth = yb[i] > 0.5
                        if predicted && truth { t += 1 } else if predicted { f += 1 } else if truth { m += 1 }
                    }
                    tp.append(Double(t)); fp.append(Double(f)); fn.append(Double(m))
                }
            }
        }
    }

    public var scores: SegmentationScores {
        func dice(_ t: Double, _ f: Double, _ m: Double) -> Double { t + f + m == 0 ? 1 : 2 * t / (2 * t + f + m) }
        func iou(_ t: Double, _ f: Double, _ m: Double) -> Double { t + f + m == 0 ? 1 : t / (t + f + m) }
        let n = tp.count
        guard n > 0 else { return SegmentationScores(dicePerImage: 0, iouPerImage: 0, dicePooled: 0, iouPooled: 0, images: 0) }
        var d = 0.0, j = 0.0
        for i in 0..<n { d += dice(tp[i], fp[i], fn[i]); j += iou(tp[i], fp[i], fn[i]) }
        let (T, F, M) = (tp.reduce(0, +), fp.reduce(0, +), fn.reduce(0, +))
        return SegmentationScores(dicePerImage: d / Double(n), iouPerImage: j / Double(n),
                                  dicePooled: dice(T, F, M), iouPooled: iou(T, F, M), images: n)
    }
}
