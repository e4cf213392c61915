import XCTest
@testable import Engine

/// The U-Net's head in C: the sigmoid's and the loss's polynomial exp and log, and the 1x1
/// convolution to one channel, against float64 references.
final class HeadKernelsTests: XCTestCase {
    func testSigmoidWithinFourUlpsOfFloat64() {
        var values: [Float] = stride(from: Float(-30), through: 30, by: 0.0137).map { $0 }
        values += [0, -0, 1e-8, -1e-8, 80, -80, 87, -87, 100, -100, 1e6, -1e6, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        let y = Sigmoid(name: "s").forward(Tensor(shape: [values.count], storage: values), training: false)
        var worst: Float = 0
        for (v, out) in zip(values, y.storage) {
            let exact = 1 / (1 + Foundation.exp(-Double(v)))
            XCTAssertTrue(out >= 0 && out <= 1, "sigmoid(\(v)) = \(out) outside [0, 1]")
            // Relative error in units of float32 rounding, for results above float's normal range.
            if exact >= Double(Float.leastNormalMagnitude) {
                let ulps = Float(abs(Double(out) - exact) / (exact * Double(Float.ulpOfOne)))
                worst = max(worst, ulps)
            } else {
                XCTAssertLessThanOrEqual(out, 2 * Float.leastNormalMagnitude, "sigmoid(\(v)) = \(out), float64 \(exact)")
            }
        }
        print("sigmoid: worst error \(worst) ulps")
        XCTAssertLessThanOrEqual(worst, 4)
    }

    func testLossSumsMatchFloat64() {
        var rng = SeededGenerator(seed: 7)
        let n = 3 * 1000 + 17
        // Probabilities across the range, including both clip edges.
        var p = (0..<n).map { _ in rng.uniform(0, 1) }
        p[0] = 0; p[1] = 1; p[2] = 1e-9; p[3] = 1 - 1e-9
        let y = (0..<n).map { _ in Float(rng.uniform(0, 1) > 0.6 ? 1 : 0) }
        let (pt, yt) = (Tensor(shape: [1, n, 1, 1], storage: p), Tensor(shape: [1, n, 1, 1], storage: y))
        let eps = Double(Loss.clipEpsilon)
        var bce = 0.0, intersection = 0.0, sumY = 0.0, sumP = 0.0
        for i in 0..<n {
            let pc = min(max(Double(p[i]), eps), 1 - eps), yi = Double(y[i])
            bce -= yi * Foundation.log(pc) + (1 - yi) * Foundation.log(1 - pc)
            intersection += yi * Double(p[i]); sumY += yi; sumP += Double(p[i])
        }
        bce /= Double(n)
        let dice = (2 * intersection + Loss.diceSmooth) / (sumY + sumP + Loss.diceSmooth)
        XCTAssertEqual(Double(Loss.bce.evaluate(probabilities: pt, targets: yt).loss), bce, accuracy: 1e-6 * bce)
        XCTAssertEqual(Double(Loss.dice.evaluate(probabilities: pt, targets: yt).loss), 1 - dice, accuracy: 1e-6)
        XCTAssertEqual(Double(Loss.bceDice.evaluate(probabilities: pt, targets: yt).loss), bce + 1 - dice, accuracy: 2e-6 * bce)
    }

    func testOneChannelPointwiseConvolutionMatchesFloat64() {
        for cin in [1, 5, 16, 64] {
            let x = randomTensor([2, 9, 7, cin], seed: UInt64(cin))
            let conv = Conv2D(name: "head", kernel: randomTensor([1, 1, cin, 1], seed: 100 + UInt64(cin)), bias: randomTensor([1], seed: 3))
            let y = conv.forward(x, training: true)
            XCTAssertEqual(y.shape, [2, 9, 7, 1])
            for r in 0..<(2 * 9 * 7) {
                var exact = Double(conv.bias!.value.storage[0])
                for c in 0..<cin { exact += Double(x.storage[r * cin + c]) * Double(conv.kernel.value.storage[c]) }
                XCTAssertEqual(Double(y.storage[r]), exact, accuracy: 1e-5 * max(1, abs(exact)), "row \(r), \(cin) channels")
            }
        }
    }
}
