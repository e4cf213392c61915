import Foundation
import XCTest
@testable import Compression
@testable import Engine

final class LatencyTests: XCTestCase {
    func testMedian() {
        XCTAssertEqual(median([3, 1, 2]), 2)
        XCTAssertEqual(median([4, 1, 3, 2]), 2.5)
    }

    func testMeasurementsAndInterleavedComparison() throws {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 1)
        let (compressed, _) = try ModelCompressor.compress(model: model, method: .svd(rank: 1), imageSize: 16)
        let one = try Latency.measureInferenceLatency(model: model, batch: 2, imageSize: 16, runs: 5, warmup: 1)
        XCTAssertEqual(one.samplesMsPerImage.count, 5)
        XCTAssertEqual(one.medianMsPerImage, median(one.samplesMsPerImage))
        XCTAssertEqual(one.bestMsPerImage, one.samplesMsPerImage.min())
        XCTAssertTrue(one.samplesMsPerImage.allSatisfy { $0 > 0 })
        XCTAssertEqual(one.blasThreads, BLAS.threads)
        let both = try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: 2, imageSize: 16,
                                                       runs: 4, warmup: 1, rounds: 3)
        XCTAssertEqual(both.baseline.samplesMsPerImage.count, 12)
        XCTAssertEqual(both.compressed.cpuSamplesMsPerImage?.count, 12)
        XCTAssertTrue(both.compressed.cpuSamplesMsPerImage!.allSatisfy { $0 > 0 })
        // Each model's figure is the median of its three rounds' medians, and the speed-up their ratio.
        let baseRounds = try XCTUnwrap(both.baseline.roundMediansMsPerImage)
        let compRounds = try XCTUnwrap(both.compressed.roundMediansMsPerImage)
        XCTAssertEqual(baseRounds, stride(from: 0, to: 12, by: 4).map { median(Array(both.baseline.samplesMsPerImage[$0..<$0 + 4])) })
        XCTAssertEqual(both.baseline.medianMsPerImage, median(baseRounds))
        XCTAssertEqual(both.speedUp, both.baseline.medianMsPerImage / both.compressed.medianMsPerImage)
        XCTAssertEqual(both.roundSpeedUps?.count, 3)
        XCTAssertEqual(both.roundSpeedUps?[1], baseRounds[1] / compRounds[1])
        XCTAssertEqual(both.spread, both.roundSpeedUps!.max()! - both.roundSpeedUps!.min()!)
        XCTAssertEqual(try XCTUnwrap(both.cpuSpeedUp),
                       median(both.baseline.roundMediansCPUMsPerImage!) / median(both.compressed.roundMediansCPUMsPerImage!))
        XCTAssertThrowsError(try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: 2, imageSize: 16,
                                                                 runs: 1, warmup: 0, rounds: 0))
        XCTAssertThrowsError(try Latency.measureInferenceLatency(model: model, batch: 0, imageSize: 16, runs: 1, warmup: 0))
        XCTAssertThrowsError(try Latency.measureInferenceLatency(model: model, batch: 1, imageSize: 10, runs: 1, warmup: 0))
    }
}
