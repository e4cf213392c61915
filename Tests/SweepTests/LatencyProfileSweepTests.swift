@testable import Compression
import Engine
import Foundation
import XCTest
@testable import Sweep

/// A sweep with a latency profile: the coordinator ships the file to every compress job, and every
/// worker decides by it alike, whatever its own clock would say.
final class LatencyProfileSweepTests: XCTestCase {
    /// A profile of the sweep's model (base 4, depth 2, 3 channels, 32 px) where every pair is
    /// faster than its full layer except those of `slow`, whose pairs the profile times slower.
    static func profile(slow: Set<String>) -> LatencyProfile {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 1)
        let layers = ModelCompressor.convolutionSlots(of: model, imageSize: 32).filter { !$0.isHead }.map { slot in
            let c = slot.layer
            let pair = slow.contains(c.name) ? 3.0 : 0.5
            return LatencyProfile.Layer(name: c.name, kernelShape: [c.kernelHeight, c.kernelWidth, c.inChannels, c.outChannels],
                                        inputSize: slot.size, fullMs: 1, fullSpreadMs: [1, 1],
                                        pairs: ["svd": [.init(rank: 1, ms: pair, spreadMs: []), .init(rank: 64, ms: pair, spreadMs: [])]])
        }
        return LatencyProfile(host: "deployment-target", cpu: "Target CPU", blasCore: "-", threads: 1, batch: 1, runs: 1, imageSize: 32,
                              createdAt: "2026-12-07T00:00:00Z", layers: layers)
    }

    func testTwoWorkersDecideByTheShippedProfileAlike() throws {
        let slow: Set<String> = ["enc1_conv1", "dec0_conv2"]
        let cluster = Cluster("profile", sweep: TargetSearchClusterTests.base + "compression: {svd_ranks: [1, 2, 3, 4], arsvd_taus: [0.9], latency_profile: target.json}\n")
        try JSONEncoder().encode(Self.profile(slow: slow)).write(to: URL(fileURLWithPath: cluster.dir + "/target.json"))
        let c = try cluster.startCoordinator()
        try cluster.startWorker("a")
        try cluster.startWorker("b")
        XCTAssertEqual(c.wait(300), 0, c.output)
        let results = try cluster.store().results().filter { $0.job != "train-s1" }
        XCTAssertEqual(results.count, 5)
        XCTAssertEqual(Set(results.map(\.worker)).count, 2, "both workers ran compress jobs: \(results.map(\.worker))")
        for r in results {
            let summary = try JSONDecoder().decode(CompressionSummaryEnvelope.self, from: Data(r.result.utf8)).summary
            XCTAssertEqual(summary.latencyProfile?.host, "deployment-target", r.job)
            for d in summary.layers where d.skipReason != .outputHead && d.chosenRank.map({ Double($0) < d.breakEvenRank }) == true {
                if slow.contains(d.name) {
                    XCTAssertEqual(d.skipReason, .slowerThanFull(fullMs: 1, factorisedMs: 3), "\(r.job) \(d.name)")
                } else {
                    XCTAssertTrue(d.factorised, "\(r.job) \(d.name): the profile times its pair faster")
                }
            }
        }
    }
}

/// The part of a compress job's result this test reads.
private struct CompressionSummaryEnvelope: Decodable {
    var summary: CompressionSummary
}
