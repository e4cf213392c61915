import XCTest
@testable import Engine

/// Single layers against Keras 3.15 / TensorFlow 2.21 (Tests/Fixtures/golden/layer_cases.safetensors).
/// Tolerance: 1e-5 relative (with an absolute floor of 1), as the golden README states.
final class GoldenLayerTests: XCTestCase {
    var cases: [String: Tensor] = [:]

    override func setUpWithError() throws { cases = try golden("layer_cases.safetensors") }

    func testConvolutionsMatchKeras() throws {
        for prefix in ["conv3x3", "conv1x1", "conv5x5"] {
            let conv = Conv2D(name: prefix, kernel: cases["\(prefix).kernel"]!, bias: cases["\(prefix).bias"])
            let out = conv.forward(cases["\(prefix).x"]!, training: false)
            let err = maxRelativeError(out, cases["\(prefix).out"]!)
            print("golden \(prefix): max relative error \(err)")
            XCTAssertLessThan(err, 1e-5, prefix)
        }
    }

    func testTransposedConvolutionMatchesKeras() {
        let layer = ConvTranspose2D(name: "convT", kernel: cases["convT2x2.kernel"]!, bias: cases["convT2x2.bias"]!)
        let out = layer.forward(cases["convT2x2.x"]!, training: false)
        let err = maxRelativeError(out, cases["convT2x2.out"]!)
        print("golden convT2x2: max relative error \(err)")
        XCTAssertLessThan(err, 1e-5)
    }

    func testMaxPoolMatchesKeras() {
        let out = MaxPool2D(name: "pool").forward(cases["maxpool.x"]!, training: false)
        XCTAssertEqual(out.shape, [2, 3, 4, 3])
        XCTAssertEqual(out.maxAbsDifference(cases["maxpool.out"]!), 0)
    }

    func testBatchNormTrainingStepMatchesKeras() {
        let bn = BatchNorm(name: "bn", channels: 5)
        let out = bn.forward(cases["bn.x"]!, training: true)
        let err = maxRelativeError(out, cases["bn.train_out"]!)
        print("golden bn: max relative error \(err)")
        XCTAssertLessThan(err, 1e-5)
        XCTAssertLessThan(maxRelativeError(bn.movingMean.value, cases["bn.moving_mean_after"]!), 1e-6)
        XCTAssertLessThan(maxRelativeError(bn.movingVariance.value, cases["bn.moving_variance_after"]!), 1e-6)
    }
}
