import Foundation
import Pipeline
import XCTest
@testable import Sweep

/// One small real sweep end to end: a baseline `train` job and its `compress` jobs, run by real
/// worker processes through the real coordinator, results decoded as Pipeline's own types.
final class PipelineSweepTests: XCTestCase {
    /// Tests/Fixtures/small-sweep.yaml (shared with the report tests).
    static let sweep = try! String(contentsOfFile: Harness.root + "/Tests/Fixtures/small-sweep.yaml", encoding: .utf8)

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
