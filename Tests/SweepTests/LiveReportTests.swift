import Foundation
import XCTest
@testable import Sweep

/// The report kept current while a sweep runs (`--report-interval`), and `status --json`.
final class LiveReportTests: XCTestCase {
    /// 16 half-second jobs on one slot: about 8 s. With a 1 s interval the report appears, and is
    /// rewritten with more results, while jobs are still left; the final one covers every job.
    func testReportIsRefreshedWhileTheSweepRuns() throws {
        let c = Cluster("livereport", sweep: "sleep: {count: 16, seconds: 0.5}\n")
        let coord = try c.startCoordinator(extra: ["--report-interval", "1"])
        try c.startWorker("a", extra: ["--slots", "1"])
        let html = c.stateDir + "/report/report.html"
        let finished = { (try? c.store().results().count) ?? 0 }
        eventually(30, "an interim report while jobs are left") { FileManager.default.fileExists(atPath: html) }
        let firstDone = finished()
        XCTAssertLessThan(firstDone, 16, "the first report came before the sweep ended")
        XCTAssertTrue(coord.process.isRunning)
        XCTAssertEqual(coord.wait(60), 0, coord.output)
        XCTAssertTrue(coord.output.contains("report refreshed"), coord.output)
        XCTAssertTrue(coord.output.contains("report written to") && coord.output.contains("16 done of 16 jobs"), coord.output)

        // status --json: the same content as status, as one JSON object.
        let status = try Proc(["status", "--state-dir", c.stateDir, "--json"], log: c.dir + "/status-json.log")
        XCTAssertEqual(status.wait(20), 0, status.output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any], status.output)
        XCTAssertEqual(object["total"] as? Int, 16)
        XCTAssertEqual((object["jobs"] as? [String: Int])?["done"], 16)
        XCTAssertEqual(object["complete"] as? Bool, true)
        XCTAssertEqual(object["left"] as? Int, 0)
        XCTAssertEqual(object["source"] as? String, c.stateDir)
    }

    func testStatusJSONFromARunningCoordinator() throws {
        let c = Cluster("statusjson", sweep: "sleep: {count: 4, seconds: 5}\n")
        let coord = try c.startCoordinator()
        try c.startWorker("a", extra: ["--slots", "1"])
        eventually(20, "a job running") { ((try? c.store().jobs()) ?? []).contains { $0.state == .running } }
        let (rc, out) = try c.statusConnect(extra: ["--json"])
        XCTAssertEqual(rc, 0, out)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], out)
        XCTAssertEqual(object["total"] as? Int, 4)
        XCTAssertEqual(object["complete"] as? Bool, false)
        let workers = try XCTUnwrap(object["workers"] as? [[String: Any]])
        XCTAssertEqual(workers.count, 1)
        XCTAssertEqual((workers.first?["running"] as? [[String: Any]])?.count, 1, out)
        coord.term()
        XCTAssertNotNil(coord.wait(20))
    }
}
