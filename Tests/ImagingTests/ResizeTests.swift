import Engine
import XCTest
@testable import Imaging

final class ResizeTests: XCTestCase {
    func testBilinearHalvingAveragesBlocks() {
        // 4x4 -> 2x2 with half-pixel centres samples exactly between the 2x2 blocks.
        let t = Tensor(shape: [4, 4, 1], storage: (0..<16).map(Float.init))
        let r = Resize.bilinear(t, height: 2, width: 2)
        XCTAssertEqual(r.shape, [2, 2, 1])
        XCTAssertEqual(r.storage, [2.5, 4.5, 10.5, 12.5])
    }

    func testBilinearUpscaleKeepsConstantsAndClampsEdges() {
        let t = Tensor(shape: [2, 2, 2], storage: [0, 1, 1, 1, 0, 1, 1, 1])
        let r = Resize.bilinear(t, height: 4, width: 4)
        XCTAssertEqual(r.shape, [4, 4, 2])
        // Channel 1 is constant 1 everywhere.
        XCTAssertTrue(stride(from: 1, to: r.count, by: 2).allSatisfy { r.storage[$0] == 1 })
        // Channel 0, row 0: corners are the source pixels, inner samples at 1/4 and 3/4.
        XCTAssertEqual((0..<4).map { r[0, $0, 0] }, [0, 0.25, 0.75, 1])
    }

    func testNearestKeepsMaskValues() {
        let m = Tensor(shape: [2, 3, 1], storage: [0, 1, 0, 1, 1, 0])
        let up = Resize.nearest(m, height: 4, width: 6)
        XCTAssertEqual(up.shape, [4, 6, 1])
        XCTAssertEqual((0..<6).map { up[0, $0, 0] }, [0, 0, 1, 1, 0, 0])
        XCTAssertEqual((0..<6).map { up[3, $0, 0] }, [1, 1, 1, 1, 0, 0])
        let down = Resize.nearest(up, height: 2, width: 3)
        XCTAssertEqual(down, m)
    }
}
