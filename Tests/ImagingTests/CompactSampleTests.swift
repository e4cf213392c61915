import Engine
import Foundation
import XCTest
@testable import Imaging

final class CompactSampleTests: XCTestCase {
    /// Exact 8-bit levels are held as bytes and read back bit for bit; anything else stays Float32.
    func testExactLevelsAreBytesAndOthersStayFloats() {
        let levels = Tensor(shape: [2, 2, 3], storage: (0..<12).map { Float($0 * 23) / 255 })
        let p = SamplePixels(levels)
        XCTAssertTrue(p.isCompact)
        XCTAssertEqual(p.storedBytes, 12)
        XCTAssertEqual(p.tensor.storage.map(\.bitPattern), levels.storage.map(\.bitPattern))
        XCTAssertEqual(p.shape, [2, 2, 3])

        let sixteen = Tensor(shape: [1, 2, 1], storage: [Float(1000) / 65535, 0])
        XCTAssertFalse(SamplePixels(sixteen).isCompact)
        XCTAssertEqual(SamplePixels(sixteen).tensor, sixteen)
        let near = Tensor(shape: [1, 1, 1], storage: [Float(7) / 255 + 1e-7])
        XCTAssertFalse(SamplePixels(near).isCompact)
        XCTAssertFalse(SamplePixels(Tensor(shape: [1, 1, 1], storage: [.nan])).isCompact)
        XCTAssertFalse(SamplePixels(Tensor(shape: [1, 1, 1], storage: [-0.0 - 1 / 255])).isCompact)
        XCTAssertEqual(SamplePixels.table[255], 1)
    }

    /// A loaded 8-bit dataset holds 4 bytes per RGB pixel; a resized one keeps its Float32 values.
    func testLoadedSamplesAreCompactUnlessResized() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-compact-\(UUID())").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try SyntheticDataset.write(to: dir, count: 6, size: 16, seed: 3)
        let native = try DatasetLoader.load(root: dir, size: 16, channels: 3)
        for s in native.train + native.val + native.test {
            XCTAssertEqual(s.storedBytes, 16 * 16 * 4)
            let decoded = try PNGCodec.readImage(path: "\(dir)/images/\(s.name).png", channels: 3)
            XCTAssertEqual(s.image.storage.map(\.bitPattern), decoded.storage.map(\.bitPattern))
        }
        let resized = try DatasetLoader.load(root: dir, size: 12, channels: 3)
        XCTAssertFalse(resized.train[0].imagePixels.isCompact)
        XCTAssertTrue(resized.train[0].maskPixels.isCompact, "nearest-neighbour masks stay 0/1")
    }
}
