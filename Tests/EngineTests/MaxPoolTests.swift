import XCTest
@testable import Engine

/// MaxPool2D against a direct loop, on channel counts on and off the 8-wide vector path, with ties
/// (the first maximum in tap order wins, as TensorFlow's does, and gets the whole gradient).
final class MaxPoolTests: XCTestCase {
    func testMatchesDirectLoopWithTies() {
        for c in [3, 8, 16, 21] {
            var x = randomTensor([2, 6, 4, c], seed: UInt64(70 + c))
            // Quantise so that many windows hold ties.
            x = Tensor(shape: x.shape, storage: x.storage.map { ($0 * 2).rounded() / 2 })
            let g = randomTensor([2, 3, 2, c], seed: UInt64(80 + c))
            let pool = MaxPool2D(name: "pool")
            let y = pool.forward(x, training: true)
            let dx = pool.backward(g)
            var expectedDx = Tensor.zeros(x.shape)
            var ties = 0
            for n in 0..<2 { for i in 0..<3 { for j in 0..<2 { for ch in 0..<c {
                let taps = [(2 * i, 2 * j), (2 * i, 2 * j + 1), (2 * i + 1, 2 * j), (2 * i + 1, 2 * j + 1)]
                let values = taps.map { x[n, $0.0, $0.1, ch] }
                let best = values.max()!
                let winner = values.firstIndex(of: best)!
                if values.filter({ $0 == best }).count > 1 { ties += 1 }
                XCTAssertEqual(y[n, i, j, ch], best)
                expectedDx[n, taps[winner].0, taps[winner].1, ch] = g[n, i, j, ch]
            } } } }
            XCTAssertEqual(dx, expectedDx, "\(c) channels")
            XCTAssertGreaterThan(ties, 0, "the data has ties to break")
        }
    }
}
