import Foundation
import XCTest
@testable import Compression
@testable import Engine

final class RecalibrationTests: XCTestCase {
    /// Exact per-channel mean and biased variance (Double) of NHWC tensors pooled over every pixel.
    func statistics(_ tensors: [Tensor]) -> (mean: [Double], variance: [Double]) {
        let c = tensors[0].shape.last!
        var sum = [Double](repeating: 0, count: c), n = 0
        for t in tensors { for (i, v) in t.storage.enumerated() { sum[i % c] += Double(v) }; n += t.count / c }
        let mean = sum.map { $0 / Double(n) }
        var sq = [Double](repeating: 0, count: c)
        for t in tensors { for (i, v) in t.storage.enumerated() { let d = Double(v) - mean[i % c]; sq[i % c] += d * d } }
        return (mean, sq.map { $0 / Double(n) })
    }

    func assertMatches(_ bn: BatchNorm, _ expected: (mean: [Double], variance: [Double]), file: StaticString = #filePath, line: UInt = #line) {
        var worst = 0.0
        for i in 0..<bn.channels {
            let m = Double(bn.movingMean.value.storage[i]), v = Double(bn.movingVariance.value.storage[i])
            worst = max(worst, abs(m - expected.mean[i]) / max(1, abs(expected.mean[i])),
                        abs(v - expected.variance[i]) / max(1e-3, expected.variance[i]))
        }
        print("\(bn.name): recalibrated statistics, worst relative error \(worst)")
        XCTAssertLessThan(worst, 1e-5, bn.name, file: file, line: line)
    }

    /// On a BatchNorm fed directly: batches of different sizes, the running statistics become the
    /// pooled mean and biased variance (not an exponential average, not a mean of per-batch variances).
    func testDirectBatchNormGetsExactStatistics() {
        let bn = BatchNorm(name: "bn", channels: 3, momentum: 0.99)
        let batches = [randomTensor([3, 5, 4, 3], seed: 1, scale: 2, offset: 3),
                       randomTensor([1, 5, 4, 3], seed: 2, scale: 0.5, offset: -1),
                       randomTensor([2, 5, 4, 3], seed: 3, scale: 1, offset: 0.5)]
        bn.beginRecalibration()
        for b in batches { _ = bn.forward(b, training: true) }
        XCTAssertTrue(bn.endRecalibration())
        assertMatches(bn, statistics(batches))
    }

    /// Through a model: `BatchNormRecalibration.run` sets enc0_bn1 to the exact statistics of
    /// enc0_conv1's outputs over all batches, moves every BatchNorm, and changes no weight.
    func testRecalibrationThroughTheModel() {
        let model = randomisedUNet(UNetConfig(inputChannels: 3, baseFilters: 4, depth: 1), seed: 7)
        let trainableBefore = model.trainableParameters.map(\.value)
        let statsBefore = model.batchNorms.map(\.movingMean.value)
        let batches = [randomTensor([3, 8, 8, 3], seed: 11, scale: 1, offset: 0.7),
                       randomTensor([1, 8, 8, 3], seed: 12, scale: 0.3, offset: 0.2),
                       randomTensor([2, 8, 8, 3], seed: 13, scale: 1, offset: 0.4)]
        let report = BatchNormRecalibration.run(model: model, batches: batches)
        XCTAssertEqual(report, RecalibrationReport(batches: 3, images: 6, layers: model.batchNorms.count))
        let conv = model.encoders[0].conv1
        assertMatches(model.encoders[0].bn1, statistics(batches.map { conv.forward($0, training: false) }))
        XCTAssertEqual(model.trainableParameters.map(\.value), trainableBefore)
        for (bn, before) in zip(model.batchNorms, statsBefore) { XCTAssertNotEqual(bn.movingMean.value, before, bn.name) }
        // No data: nothing changes.
        let snapshot = model.stateDictionary
        XCTAssertEqual(BatchNormRecalibration.run(model: model, batches: [Tensor]()).layers, 0)
        XCTAssertEqual(model.stateDictionary, snapshot)
    }

    /// After compression, recalibration makes inference-mode BatchNorm inputs match the data again:
    /// on the calibration data, inference and batch-statistics predictions agree closely.
    func testRecalibrationAfterCompressionAlignsInferenceWithBatchStatistics() throws {
        let model = randomisedUNet(UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 17)
        let (compressed, _) = try ModelCompressor.compress(model: model, method: .svd(rank: 1), imageSize: 16)
        let x = randomTensor([8, 16, 16, 3], seed: 18, scale: 0.5, offset: 0.5)
        let before = compressed.forward(x, training: false).maxAbsDifference(compressed.forward(x, training: true))
        BatchNormRecalibration.run(model: compressed, batches: [x])
        let after = compressed.forward(x, training: false).maxAbsDifference(compressed.forward(x, training: true))
        print("inference vs batch statistics after compression: max |Δp| \(before) -> \(after) after recalibration")
        XCTAssertLessThan(after, 1e-3)
        XCTAssertLessThan(after, before)
    }
}
