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
                                                       runs: 4, warmup: 1)
        XCTAssertEqual(both.baseline.samplesMsPerImage.count, 4)
        XCTAssertEqual(both.compressed.samplesMsPerImage.count, 4)
        XCTAssertEqual(both.speedUp, both.baseline.medianMsPerImage / both.compressed.medianMsPerImage)
        XCTAssertThrowsError(try Latency.measureInferenceLatency(model: model, batch: 0, imageSize: 16, runs: 1, warmup: 0))
        XCTAssertThrowsError(try Latency.measureInferenceLatency(model: model, batch: 1, imageSize: 10, runs: 1, warmup: 0))
    }
}
