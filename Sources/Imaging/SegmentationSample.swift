import Engine

/// One image with its binary segmentation mask, at the model's input size.
public struct SegmentationSample: Sendable, Equatable {
    /// The file stem (`0007` for `images/0007.png`); unique within a dataset.
    public let name: String
    /// `[S, S, C]`, C = 1 or 3, values in [0, 1].
    public var image: Tensor
    /// `[S, S, 1]` of exactly 0 (background) or 1 (foreground).
    public var mask: Tensor

    public init(name: String, image: Tensor, mask: Tensor) {
        precondition(image.rank == 3 && mask.rank == 3, "SegmentationSample \(name): expected [H, W, C] tensors, got \(image.shape) and \(mask.shape)")
        precondition(image.shape[0] == mask.shape[0] && image.shape[1] == mask.shape[1] && mask.shape[2] == 1,
                     "SegmentationSample \(name): image \(image.shape) and mask \(mask.shape) must share H and W, mask with 1 channel")
        self.name = name
        self.image = image
        self.mask = mask
    }

    /// Fraction of mask pixels that are foreground.
    public var foregroundFraction: Double {
        Double(mask.storage.reduce(0, +)) / Double(max(1, mask.count))
    }
}
