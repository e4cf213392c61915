import Engine

/// Seeded training-time augmentation for segmentation: flips move image and mask together;
/// brightness and contrast change the image only; the result is clamped to [0, 1].
///
/// Per image, in this order (so a seed gives the same result whatever the batch size):
/// horizontal flip (p = `horizontalFlipProbability`), vertical flip (p = `verticalFlipProbability`),
/// brightness offset b ~ U(-`brightness`, `brightness`), contrast factor c ~ U(`contrast`), then
/// `x <- clamp((x - mean) * c + mean + b, 0, 1)` with `mean` the image's mean over all pixels and
/// channels. Loops run over the tensors' storage in place: no per-element allocation.
public struct Augmenter: Sendable {
    public var horizontalFlipProbability: Float
    public var verticalFlipProbability: Float
    /// Largest additive brightness change.
    public var brightness: Float
    /// Range of the contrast factor around the image mean.
    public var contrast: ClosedRange<Float>
    private var rng: SeededGenerator
    /// The random draws' generator as it stands, for checkpoints (set it to continue a run).
    public var generator: SeededGenerator {
        get { rng }
        set { rng = newValue }
    }

    public init(seed: UInt64, horizontalFlipProbability: Float = 0.5, verticalFlipProbability: Float = 0.5,
                brightness: Float = 0.1, contrast: ClosedRange<Float> = 0.9...1.1) {
        precondition((0...1).contains(horizontalFlipProbability) && (0...1).contains(verticalFlipProbability),
                     "Augmenter: flip probabilities must be in [0, 1]")
        precondition(brightness >= 0, "Augmenter: brightness must be >= 0, got \(brightness)")
        precondition(contrast.lowerBound > 0, "Augmenter: contrast factors must be positive, got \(contrast)")
        self.horizontalFlipProbability = horizontalFlipProbability
        self.verticalFlipProbability = verticalFlipProbability
        self.brightness = brightness
        self.contrast = contrast
        self.rng = SeededGenerator(seed: seed)
    }

    /// The draws for one image.
    struct Draw: Equatable {
        var flipH: Bool, flipV: Bool, offset: Float, factor: Float
    }

    mutating func draw() -> Draw {
        let flipH = rng.nextUniform() < horizontalFlipProbability
        let flipV = rng.nextUniform() < verticalFlipProbability
        let offset = rng.uniform(-brightness, brightness)
        let factor = rng.uniform(contrast.lowerBound, contrast.upperBound)
        return Draw(flipH: flipH, flipV: flipV, offset: offset, factor: factor)
    }

    /// Augments one sample: `image` `[H, W, C]`, `mask` `[H, W, 1]`.
    public mutating func apply(image: inout Tensor, mask: inout Tensor) {
        precondition(image.rank == 3 && mask.rank == 3 && image.shape[0] == mask.shape[0] && image.shape[1] == mask.shape[1],
                     "Augmenter.apply: expected [H, W, C] image and [H, W, 1] mask of the same H, W; got \(image.shape), \(mask.shape)")
        var images = image.reshaped([1] + image.shape), masks = mask.reshaped([1] + mask.shape)
        image = Tensor.zeros([0]); mask = Tensor.zeros([0])   // drop the references so storage stays unique
        applyBatch(images: &images, masks: &masks)
        image = images.reshaped(Array(images.shape.dropFirst()))
        mask = masks.reshaped(Array(masks.shape.dropFirst()))
    }

    /// Augments one sample.
    public mutating func apply(_ sample: inout SegmentationSample) {
        var image = sample.image, mask = sample.mask
        apply(image: &image, mask: &mask)
        sample.image = image
        sample.mask = mask
    }

    /// Augments an NHWC batch in place: `images` `[N, H, W, C]`, `masks` `[N, H, W, Cm]`.
    public mutating func applyBatch(images: inout Tensor, masks: inout Tensor) {
        precondition(images.rank == 4 && masks.rank == 4 && images.shape[0] == masks.shape[0]
                     && images.shape[1] == masks.shape[1] && images.shape[2] == masks.shape[2],
                     "Augmenter.applyBatch: expected NHWC images and masks of the same N, H, W; got \(images.shape), \(masks.shape)")
        let n = images.shape[0], h = images.shape[1], w = images.shape[2], c = images.shape[3], cm = masks.shape[3]
        let perImage = h * w * c, perMask = h * w * cm
        images.storage.withUnsafeMutableBufferPointer { img in
            masks.storage.withUnsafeMutableBufferPointer { msk in
                for i in 0..<n {
                    let d = draw()
                    let image = UnsafeMutableBufferPointer(rebasing: img[(i * perImage)..<((i + 1) * perImage)])
                    let mask = UnsafeMutableBufferPointer(rebasing: msk[(i * perMask)..<((i + 1) * perMask)])
                    if d.flipH { Self.flipHorizontal(image, h: h, w: w, c: c); Self.flipHorizontal(mask, h: h, w: w, c: cm) }
                    if d.flipV { Self.flipVertical(image, h: h, w: w, c: c); Self.flipVertical(mask, h: h, w: w, c: cm) }
                    Self.adjust(image, offset: d.offset, factor: d.factor)
                }
            }
        }
    }

    /// Mirrors left-right: pixel (y, x) swaps with (y, w-1-x), channels kept together.
    static func flipHorizontal(_ p: UnsafeMutableBufferPointer<Float>, h: Int, w: Int, c: Int) {
        for y in 0..<h {
            let row = y * w * c
            for x in 0..<(w / 2) {
                let a = row + x * c, b = row + (w - 1 - x) * c
                for k in 0..<c { p.swapAt(a + k, b + k) }
            }
        }
    }

    /// Mirrors top-bottom: row y swaps with row h-1-y.
    static func flipVertical(_ p: UnsafeMutableBufferPointer<Float>, h: Int, w: Int, c: Int) {
        let rowLength = w * c
        for y in 0..<(h / 2) {
            let a = y * rowLength, b = (h - 1 - y) * rowLength
            for i in 0..<rowLength { p.swapAt(a + i, b + i) }
        }
    }

    /// `x <- clamp((x - mean) * factor + mean + offset, 0, 1)`.
    static func adjust(_ p: UnsafeMutableBufferPointer<Float>, offset: Float, factor: Float) {
        guard p.count > 0 else { return }
        var sum: Double = 0
        for v in p { sum += Double(v) }
        let mean = Float(sum / Double(p.count))
        let shift = mean * (1 - factor) + offset
        for i in 0..<p.count { p[i] = min(1, max(0, p[i] * factor + shift)) }
    }
}
