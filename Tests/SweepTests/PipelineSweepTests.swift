import Foundation
import Pipeline
import XCTest
@testable import Sweep

/// One small real sweep end to end: a baseline `train` job and its `compress` jobs, run by real
/// worker processes through the real coordinator, results decoded as Pipeline's own types.
final class PipelineSweepTests: XCTestCase {
    static let sweep = """
        synthetic: {count: 24, size: 32, seed: 3}
        image_size: 32
        model: {base_filters: 4, depth: 2, channels: 3}
        baseline: {epochs: 2, batch_size: 4, lr: 0.003, patience: 5, lr_patience: 3, augment: true}
        compression: {svd_ranks: [2, 4], arsvd_taus: [0.9]}
        fine_tune: {epochs: 1, lr: 0.0001}
        seeds: [1]
        max_attempts: 2

        """

    func testTrainAndCompressSweepEndToEnd() throws {
        let c = Cluster("pipeline", sweep: PipelineSweepTests.sweep)
        let coord = try c.startCoordinator()
        try c.startWorker("a", extra: ["--threads", "1"])
        try c.startWorker("b", extra: ["--threads", "1"])
        XCTAssertEqual(coord.wait(120), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM jobs"), 4)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 4, "one result per job")
        let store = try c.store()
        let rows = try store.rows("SELECT job, result FROM results ORDER BY job")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var baselineDice: Double?
        var compressed: [String: CompressResult] = [:]
        for row in rows {
            let json = Data(row["result"]!.utf8)
            if row["job"]!.hasPrefix("train") {
                let r = try decoder.decode(TrainResult.self, from: json)
                XCTAssertEqual(r.epochsRun, 2)
                baselineDice = r.test.dice
            } else {
                compressed[row["job"]!] = try decoder.decode(CompressResult.self, from: json)
            }
        }
        XCTAssertEqual(compressed.count, 3)
        for (job, r) in compressed {
            // Every compress job scored the baseline on the same test split the baseline was scored on.
            XCTAssertEqual(r.baseline.dice, baselineDice!, accuracy: 1e-9, job)
            XCTAssertGreaterThan(r.summary.parameterReductionPercent, 0, job)
        }
        // The baseline model and each compressed model came back as verified artifacts.
        let artifacts = try store.resultArtifacts()
        XCTAssertEqual(artifacts.values.filter { $0["model.safetensors"] != nil }.count, 4)
    }
}
