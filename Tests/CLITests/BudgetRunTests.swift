import Foundation
import XCTest

/// `ranksweep run budget.yaml` as a user runs it: the report's budget section, its sensitivity table
/// as a file, and a second sweep on the same baseline that reuses the table instead of measuring again.
final class BudgetRunTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try CLITests.runBinary(arguments) }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], path)
    }

    /// Each budget's allocated plan, by allocation job, from a report's results.json.
    func plans(_ report: [String: Any]) throws -> [String: String] {
        var out: [String: String] = [:]
        for budget in try XCTUnwrap(report["budgets"] as? [[String: Any]]) {
            for entry in try XCTUnwrap(budget["entries"] as? [[String: Any]]) {
                let allocation = try XCTUnwrap(entry["allocation"] as? [String: Any])
                let answer = try XCTUnwrap(allocation["answer"] as? [String: Any])
                let plan = try JSONSerialization.data(withJSONObject: try XCTUnwrap(answer["plan"]), options: [.sortedKeys])
                out["\(entry["fraction"]!)"] = String(decoding: plan, as: UTF8.self)
            }
        }
        return out
    }

    func testABudgetSweepReportsItsAllocationAndASecondSweepReusesTheTable() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-budget-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let common = """
            synthetic: {count: 32, size: 32, seed: 5}
            image_size: 32
            model: {base_filters: 4, depth: 2, channels: 3}
            baseline: {epochs: 4, batch_size: 8, lr: 0.003}
            fine_tune: {epochs: 1, lr: 0.0001}

            """
        try (common + "budget: {params: [0.3, 0.5], methods: [svd, tucker2], candidates: 3}\n").write(toFile: dir + "/budget.yaml", atomically: true, encoding: .utf8)
        var r = try run(["run", dir + "/budget.yaml", "--state-dir", dir + "/first", "--local-workers", "2", "--threads", "1", "--progress", "plain"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("27 done"), r.output)

        let report = dir + "/first/report"
        let md = try String(contentsOfFile: report + "/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("## Budget on train-s42"), md)
        XCTAssertTrue(md.contains("| params 30% | allocated |") && md.contains("| params 30% | uniform SVD r="), md)
        XCTAssertTrue(md.contains("Rank per layer") && md.contains("| enc0_conv1 | 3x3x3x4 |"), md)
        let html = try String(contentsOfFile: report + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<figure id=\"sensitivity-0\"><svg") && html.contains("layer alone factorised"), "the heatmap is in the page")
        let table = try json(report + "/sensitivity.json")
        XCTAssertEqual((table["layers"] as? [Any])?.count, 10, "every layer of the depth-2 U-Net")
        let firstReport = try json(report + "/results.json")
        let firstPlans = try plans(firstReport)
        XCTAssertEqual(firstPlans.count, 2)
        let rows = try XCTUnwrap(firstReport["rows"] as? [[String: Any]])
        let baseline = try XCTUnwrap(rows.first { $0["job"] as? String == "train-s42" }?["modelArtifact"] as? String)
        XCTAssertTrue(rows.contains { $0["method"] as? String == "budget" } && rows.contains { $0["method"] as? String == "uniform-svd" })

        // The same baseline and its table: no sensitivity job runs, and the allocation is the same.
        try (common + "baseline_model: \(baseline)\nbudget: {params: [0.3], methods: [svd, tucker2], candidates: 3, sensitivity_table: \(report)/sensitivity.json}\n")
            .write(toFile: dir + "/again.yaml", atomically: true, encoding: .utf8)
        r = try run(["run", dir + "/again.yaml", "--state-dir", dir + "/second", "--local-workers", "2", "--threads", "1", "--progress", "plain"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("3 done"), "one allocation and two compress jobs: \(r.output)")
        XCTAssertFalse(r.output.contains("sens-"), r.output)
        let secondPlans = try plans(try json(dir + "/second/report/results.json"))
        XCTAssertEqual(secondPlans["0.3"], firstPlans["0.3"], "the reused table gives the same allocation")

        // Another baseline with that table is refused before anything starts.
        let other = try XCTUnwrap(rows.first { $0["job"] as? String == "uniform-svd-p0.5-s42" }?["modelArtifact"] as? String)
        try (common + "baseline_model: \(other)\nbudget: {params: [0.3], methods: [svd], sensitivity_table: \(report)/sensitivity.json}\n")
            .write(toFile: dir + "/foreign.yaml", atomically: true, encoding: .utf8)
        r = try run(["run", dir + "/foreign.yaml", "--state-dir", dir + "/third", "--local-workers", "1", "--progress", "plain"])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("was measured on another baseline"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/third/sweep.sqlite"), "nothing half written")
    }
}
