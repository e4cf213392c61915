import Engine
import XCTest
@testable import Imaging

final class OverlayTests: XCTestCase {
    func testSideBySideLayoutAndBoundaries() throws {
        let h = 10, w = 12
        let image = Tensor(shape: [h, w, 1], repeating: 0.5)
        var truth = Tensor.zeros([h, w, 1])
        for y in 2..<7 { for x in 3..<9 { truth[y, x, 0] = 1 } }
        var prob = Tensor(shape: [h, w, 1], repeating: 0.1)
        for y in 4..<8 { for x in 4..<8 { prob[y, x, 0] = 0.9 } }
        let out = Overlay.sideBySide(image: image, truth: truth,
                                     predictions: [("svd r=8", prob), ("empty", Tensor.zeros([h, w, 1]))])
        let gap = Overlay.gap
        XCTAssertEqual(out.shape, [h, 4 * w + 3 * gap, 3])
        func pixel(_ panel: Int, _ y: Int, _ x: Int) -> [Float] { (0..<3).map { out[y, panel * (w + gap) + x, $0] } }
        // Panel 0: the plain image (gray replicated).
        XCTAssertEqual(pixel(0, 2, 3), [0.5, 0.5, 0.5])
        // Panel 1: truth boundary green, interior untouched.
        XCTAssertEqual(pixel(1, 2, 3), [0, 1, 0])
        XCTAssertEqual(pixel(1, 6, 8), [0, 1, 0])
        XCTAssertEqual(pixel(1, 4, 5), [0.5, 0.5, 0.5])
        XCTAssertEqual(pixel(1, 0, 0), [0.5, 0.5, 0.5])
        // Panel 2: prediction boundary in the first prediction colour (red).
        XCTAssertEqual(pixel(2, 4, 4), [1, 0, 0])
        XCTAssertEqual(pixel(2, 5, 5), [0.5, 0.5, 0.5])
        // Panel 3: an empty prediction draws nothing.
        XCTAssertTrue((0..<h).allSatisfy { y in (0..<w).allSatisfy { pixel(3, y, $0) == [0.5, 0.5, 0.5] } })
        // Gaps are white.
        XCTAssertEqual((0..<3).map { out[5, w + 1, $0] }, [1, 1, 1])
        // Boundary pixels: the 6x5 rectangle's outline has 2*6 + 2*3 = 18 pixels.
        XCTAssertEqual(Overlay.boundary(of: truth).count, 18)
    }

    func testWritesPNG() throws {
        let dir = makeTemporaryDirectory("overlay")
        defer { removeDirectory(dir) }
        let s = SyntheticDataset.generate(count: 1, size: 32, seed: 2)[0]
        try Overlay.writeSideBySide(to: dir + "/o.png", image: s.image, truth: s.mask, predictions: [("truth", s.mask)])
        XCTAssertEqual(try PNGCodec.info(path: dir + "/o.png"), PNGCodec.Info(width: 3 * 32 + 2 * Overlay.gap, height: 32, channels: 3, bitDepth: 8))
    }
}
