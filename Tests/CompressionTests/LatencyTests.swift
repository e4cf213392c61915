import Foundation
import XCTest
@testable import Compression
@testable import Engine

final class LatencyTests: XCTestCase {
    func testMedian() {
        XCTAssertEqual(median([3, 1, 2]), 2)
        XCTAssertEqual(median([4, 1, 3, 2]), 2.5)
    }

    /// Round medians, their median and the ratios, on samples whose answers are worked out by hand.
    func testComparisonOfGivenSamples() {
        typealias S = Latency.Sample
        // Baseline rounds of 4 runs: medians 5, 2, 10 (wall) and 2.5, 1, 5 (CPU); median 5 and 2.5.
        let a = [4, 2, 6, 8, 1, 3, 2, 2, 10, 10, 10, 10].map { S(wall: $0, cpu: $0 / 2) }
        // Compressed: medians 2, 1, 5 (wall) and 1, 0.5, 2.5 (CPU); median 2 and 1.
        let b = [2, 2, 2, 2, 1, 1, 1, 1, 5, 5, 5, 5].map { S(wall: $0, cpu: $0 / 2) }
        let c = Latency.comparison(baseline: a, compressed: b, runs: 4, batch: 2, imageSize: 16, warmup: 1)
        XCTAssertEqual(c.baseline.roundMediansMsPerImage, [5, 2, 10])
        XCTAssertEqual(c.compressed.roundMediansMsPerImage, [2, 1, 5])
        XCTAssertEqual(c.baseline.roundMediansCPUMsPerImage, [2.5, 1, 5])
        XCTAssertEqual(c.baseline.medianMsPerImage, 5)
        XCTAssertEqual(c.compressed.medianMsPerImage, 2)
        XCTAssertEqual(c.baseline.bestMsPerImage, 1)
        XCTAssertEqual(c.speedUp, 2.5)
        XCTAssertEqual(c.cpuSpeedUp, 2.5)
        XCTAssertEqual(c.roundSpeedUps, [2.5, 2, 2])
        XCTAssertEqual(c.spread, 0.5)
        XCTAssertEqual(c.baseline.samplesMsPerImage.count, 12)
    }

    func testMeasurementsAndInterleavedComparison() throws {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 1)
        let (compressed, _) = try ModelCompressor.compress(model: model, method: .svd(rank: 1), imageSize: 16)
        let one = try Latency.measureInferenceLatency(model: model, batch: 2, imageSize: 16, runs: 5, warmup: 1)
        XCTAssertEqual(one.samplesMsPerImage.count, 5)
        // The median of 5 samples is the middle one: two below it, two above.
        XCTAssertEqual(one.samplesMsPerImage.filter { $0 < one.medianMsPerImage }.count, 2, "\(one.samplesMsPerImage)")
        XCTAssertEqual(one.samplesMsPerImage.filter { $0 > one.medianMsPerImage }.count, 2, "\(one.samplesMsPerImage)")
        XCTAssertEqual(one.bestMsPerImage, one.samplesMsPerImage.min())
        XCTAssertTrue(one.samplesMsPerImage.allSatisfy { $0 > 0 })
        XCTAssertEqual(one.blasThreads, BLAS.threads)
        let both = try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: 2, imageSize: 16,
                                                       runs: 4, warmup: 1, rounds: 3)
        XCTAssertEqual(both.baseline.samplesMsPerImage.count, 12)
        XCTAssertEqual(both.compressed.cpuSamplesMsPerImage?.count, 12)
        XCTAssertTrue(both.compressed.cpuSamplesMsPerImage!.allSatisfy { $0 > 0 })
        XCTAssertEqual(both.baseline.roundMediansMsPerImage?.count, 3)
        XCTAssertEqual(both.roundSpeedUps?.count, 3)
        XCTAssertThrowsError(try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: 2, imageSize: 16,
                                                                 runs: 1, warmup: 0, rounds: 0))
        XCTAssertThrowsError(try Latency.measureInferenceLatency(model: model, batch: 0, imageSize: 16, runs: 1, warmup: 0))
        XCTAssertThrowsError(try Latency.measureInferenceLatency(model: model, batch: 1, imageSize: 10, runs: 1, warmup: 0))
    }
}
