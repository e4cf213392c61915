import Engine
import XCTest
@testable import Imaging

final class AugmenterTests: XCTestCase {
    /// A batch whose image channel 0 equals the mask, so any mismatch in flipping shows.
    func makeBatch(n: Int, h: Int, w: Int) -> (images: Tensor, masks: Tensor) {
        var rng = SeededGenerator(seed: 99)
        let masks = Tensor(shape: [n, h, w, 1], storage: (0..<(n * h * w)).map { _ in rng.nextUniform() < 0.3 ? 1 : 0 })
        var images = [Float]()
        for p in 0..<(n * h * w) { images += [masks.storage[p], rng.nextUniform(), Float(p % w) / Float(w)] }
        return (Tensor(shape: [n, h, w, 3], storage: images), masks)
    }

    func testFlipsMoveImageAndMaskTogether() {
        var (images, masks) = makeBatch(n: 16, h: 6, w: 5)
        let original = images
        var augmenter = Augmenter(seed: 1, brightness: 0, contrast: 1...1)
        augmenter.applyBatch(images: &images, masks: &masks)
        for p in 0..<masks.count { XCTAssertEqual(images.storage[3 * p], masks.storage[p]) }
        XCTAssertTrue(masks.storage.allSatisfy { $0 == 0 || $0 == 1 })
        // Some images changed (flipped), some may not; channel 2 encodes x, so a horizontal flip shows.
        XCTAssertNotEqual(images, original)
    }

    func testExplicitFlips() {
        let image = Tensor(shape: [2, 3, 1], storage: [1, 2, 3, 4, 5, 6].map { $0 / 10 })
        let mask = Tensor(shape: [2, 3, 1], storage: [1, 0, 0, 0, 0, 0])
        var (i, m) = (image, mask)
        var h = Augmenter(seed: 0, horizontalFlipProbability: 1, verticalFlipProbability: 0, brightness: 0, contrast: 1...1)
        h.apply(image: &i, mask: &m)
        XCTAssertEqual(i.storage, [3, 2, 1, 6, 5, 4].map { $0 / 10 })
        XCTAssertEqual(m.storage, [0, 0, 1, 0, 0, 0])
        (i, m) = (image, mask)
        var v = Augmenter(seed: 0, horizontalFlipProbability: 0, verticalFlipProbability: 1, brightness: 0, contrast: 1...1)
        v.apply(image: &i, mask: &m)
        XCTAssertEqual(i.storage, [4, 5, 6, 1, 2, 3].map { $0 / 10 })
        XCTAssertEqual(m.storage, [0, 0, 0, 1, 0, 0])
    }

    func testBrightnessContrastChangeImageOnlyWithinBounds() {
        var (images, masks) = makeBatch(n: 8, h: 4, w: 4)
        let originalImages = images, originalMasks = masks
        var augmenter = Augmenter(seed: 3, horizontalFlipProbability: 0, verticalFlipProbability: 0)
        augmenter.applyBatch(images: &images, masks: &masks)
        XCTAssertEqual(masks, originalMasks)
        XCTAssertTrue(images.storage.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Per image, the change is x' = clamp(c x + k) with c in [0.9, 1.1] and |k| small.
        let per = 4 * 4 * 3
        for i in 0..<8 {
            let a = Array(originalImages.storage[(i * per)..<((i + 1) * per)]), b = Array(images.storage[(i * per)..<((i + 1) * per)])
            XCTAssertNotEqual(a, b)
            XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max()!, 0.1 + 0.1 + 1e-5)
        }
    }

    func testSeededDeterminism() {
        var (a, am) = makeBatch(n: 8, h: 5, w: 5)
        var (b, bm) = makeBatch(n: 8, h: 5, w: 5)
        var (c, cm) = makeBatch(n: 8, h: 5, w: 5)
        var x = Augmenter(seed: 77), y = Augmenter(seed: 77), z = Augmenter(seed: 78)
        x.applyBatch(images: &a, masks: &am)
        y.applyBatch(images: &b, masks: &bm)
        z.applyBatch(images: &c, masks: &cm)
        XCTAssertEqual(a, b)
        XCTAssertEqual(am, bm)
        XCTAssertNotEqual(a, c)
    }

    /// A batch and one-at-a-time give the same result for the same seed.
    func testBatchEqualsPerSample() {
        var (images, masks) = makeBatch(n: 4, h: 3, w: 3)
        var single: [Tensor] = [], singleMasks: [Tensor] = []
        var perSample = Augmenter(seed: 5)
        for i in 0..<4 {
            var im = images.images(i..<(i + 1)).reshaped([3, 3, 3])
            var m = masks.images(i..<(i + 1)).reshaped([3, 3, 1])
            perSample.apply(image: &im, mask: &m)
            single.append(im); singleMasks.append(m)
        }
        var batch = Augmenter(seed: 5)
        batch.applyBatch(images: &images, masks: &masks)
        XCTAssertEqual(images, Tensor.stack(single))
        XCTAssertEqual(masks, Tensor.stack(singleMasks))
    }
}
