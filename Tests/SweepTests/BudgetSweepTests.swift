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

    /// The sensitivity phase under faults: a worker that crashes in the middle of a sensitivity job,
    /// and the coordinator SIGKILLed while the phase is half done and restarted on its state dir.
    /// Every job still ends with exactly one result, and every plan meets its budget.
    func testTheSensitivityPhaseSurvivesACrashedWorkerAndAKilledCoordinator() throws {
        let c = Cluster("budget-chaos", sweep: Self.sweep.replacingOccurrences(of: "candidates: 3", with: "candidates: 6"))
        try c.startCoordinator()
        try c.startWorker("a")
        eventually(120, "the baseline trained") { c.count("SELECT COUNT(*) FROM results WHERE job = 'train-s42'") == 1 }
        // Exits abruptly 0.3 s into its first job: a sensitivity job, the only kind left to start.
        let crasher = try c.startWorker("crash", extra: ["--fault", "crash-mid-job"])
        XCTAssertNotNil(crasher.wait(60), "the faulty worker crashed")
        XCTAssertGreaterThanOrEqual(c.count("SELECT COUNT(*) FROM attempts a JOIN jobs j ON j.id = a.job WHERE a.worker LIKE 'crash-%' AND j.kind = 'sensitivity'"), 1,
                                    "the crashed worker had taken a sensitivity job")
        eventually(60, "the sensitivity phase half done") {
            c.count("SELECT COUNT(*) FROM results WHERE job LIKE 'sens-%'") >= 4
                && c.count("SELECT COUNT(*) FROM jobs WHERE kind = 'sensitivity' AND state = 'running'") >= 1
        }
        let before = c.count("SELECT COUNT(*) FROM results WHERE job LIKE 'sens-%'")
        XCTAssertLessThan(before, 20, "killed before the phase ended")
        c.coordinator?.kill9()
        let restarted = try c.startCoordinator(tag: "-2")
        try c.startWorker("b")
        XCTAssertEqual(restarted.wait(300), 0, restarted.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 27)
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT job) FROM results"), 27, "exactly one result per job")
        XCTAssertGreaterThanOrEqual(c.count("SELECT COUNT(*) FROM results WHERE job LIKE 'sens-%'"), before, "no result recorded before the kill was lost")
        let store = try c.store()
        var results: [String: String] = [:]
        for row in try store.rows("SELECT job, result FROM results") { results[row["job"]!] = row["result"]! }
        let train = try decode(TrainResult.self, results["train-s42"]!)
        for fraction in [0.3, 0.5] {
            let allocation = try decode(AllocationResult.self, results["allocate-p\(fraction)-s42"]!)
            XCTAssertEqual(allocation.tableLayers, 10, "the whole table reached the allocation")
            XCTAssertLessThanOrEqual(Double(allocation.parameters), fraction * Double(train.parameters))
        }
        Harness.removeTempDir(c.dir)
    }
}
