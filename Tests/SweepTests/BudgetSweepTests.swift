import Compression
import Foundation
import Pipeline
import XCTest
@testable import Sweep

/// A budget sweep end to end through a real coordinator and two worker processes: the sensitivity
/// jobs fan out, each allocation meets its budget, and the compress jobs run exactly the plans the
/// allocations wrote (the uniform-SVD one at the same budget beside each).
final class BudgetSweepTests: XCTestCase {
    static let sweep = """
        synthetic: {count: 32, size: 32, seed: 5}
        image_size: 32
        model: {base_filters: 4, depth: 2, channels: 3}
        baseline: {epochs: 4, batch_size: 8, lr: 0.003}
        budget: {params: [0.3, 0.5]}
        methods: [svd, tucker2]
        candidates: 3
        fine_tune: {epochs: 1, lr: 0.0001}
        """

    func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(type, from: Data(text.utf8))
    }

    func testABudgetSweepFansOutAndEveryPlanMeetsItsBudget() throws {
        let c = Cluster("budget", sweep: Self.sweep)
        let coord = try c.startCoordinator()
        try c.startWorker("a", extra: ["--threads", "1"])
        try c.startWorker("b", extra: ["--threads", "1"])
        XCTAssertEqual(coord.wait(300), 0, coord.output)
        // 1 train + 2 methods x 10 layers + 2 allocations + 2 x 2 compress jobs, each done once.
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM jobs"), 27)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 27)
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT worker) FROM results WHERE job LIKE 'sens-%'"), 2, "both workers measured")
        let store = try c.store()
        var results: [String: String] = [:]
        for row in try store.rows("SELECT job, result FROM results") { results[row["job"]!] = row["result"]! }

        let train = try decode(TrainResult.self, results["train-s42"]!)
        for (job, text) in results where job.hasPrefix("sens-") {
            let piece = try decode(SensitivityTable.self, text)
            XCTAssertEqual(piece.layers.count, 1, job)
            XCTAssertEqual(piece.parameters, train.parameters, job)
            XCTAssertTrue(job.hasPrefix("sens-\(piece.layers[0].options.first?.method ?? "?")-"), job)
        }
        for fraction in [0.3, 0.5] {
            let allocation = try decode(AllocationResult.self, results["allocate-p\(fraction)-s42"]!)
            XCTAssertEqual(allocation.tableLayers, 10)
            XCTAssertFalse(allocation.reusedTable)
            XCTAssertLessThanOrEqual(Double(allocation.parameters), fraction * Double(train.parameters), "the plan meets the budget")
            let budget = try decode(CompressResult.self, results["budget-p\(fraction)-s42"]!)
            XCTAssertEqual(budget.method, .allocated(allocation.answer.plan), "the compress job ran the allocation's plan")
            XCTAssertEqual(budget.summary.parametersAfter, allocation.parameters)
            let uniform = try decode(CompressResult.self, results["uniform-svd-p\(fraction)-s42"]!)
            XCTAssertLessThanOrEqual(Double(uniform.summary.parametersAfter), fraction * Double(train.parameters), "uniform SVD at the same budget")
            guard case .allocated(let plan) = uniform.method else { return XCTFail("uniform job ran \(uniform.method)") }
            XCTAssertTrue(plan.entries.allSatisfy { $0.method == .svd(rank: allocation.uniformSVDRank ?? -1) }, "\(plan)")
            // The chooser ran on both: the saved model is the best candidate on validation.
            for r in [budget, uniform] {
                let chosen = try XCTUnwrap(r.candidates?.first { $0.name == r.chosen })
                XCTAssertEqual(chosen.valDice, r.candidates!.map(\.valDice).max()!)
            }
        }
        Harness.removeTempDir(c.dir)
    }
}
