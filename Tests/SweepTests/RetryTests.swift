import Foundation
import XCTest
@testable import Sweep

/// `ranksweep retry`: failed jobs and the dependents that failed because of them go back to the
/// queue with a fresh attempt budget; refused while a coordinator runs on the state dir.
final class RetryTests: XCTestCase {
    func testSelectionTakesFailedDependentsAndNamesBadIds() throws {
        func row(_ id: String, _ state: JobState, deps: [String] = []) -> JobRow {
            JobRow(id: id, kind: "x", spec: "{}", deps: deps, inputs: [], state: state, attempt: 1, failures: 1, maxAttempts: 1)
        }
        let rows = [row("a", .failed), row("b", .failed, deps: ["a"]), row("c", .failed, deps: ["b"]), row("d", .done),
                    row("e", .failed), row("f", .queued, deps: ["a"])]
        XCTAssertEqual(try Retry.select(rows, allFailed: false, ids: ["a"], stateDir: "S"), ["a", "b", "c"])
        XCTAssertEqual(try Retry.select(rows, allFailed: true, ids: [], stateDir: "S"), ["a", "b", "c", "e"])
        XCTAssertThrowsError(try Retry.select(rows, allFailed: false, ids: ["zz"], stateDir: "S")) {
            XCTAssertEqual("\($0)", "state dir S has no job zz")
        }
        XCTAssertThrowsError(try Retry.select(rows, allFailed: false, ids: ["d"], stateDir: "S")) {
            XCTAssertTrue("\($0)".contains("job d in S is done, not failed"), "\($0)")
        }
    }

    func retry(_ args: [String], _ c: Cluster, _ tag: String) throws -> Proc {
        let p = try Proc(["retry", "--state-dir", c.stateDir] + args, log: c.dir + "/retry-\(tag).log")
        p.wait(30)
        return p
    }

    func testRetryRequeuesAFailedBaselineAndItsDependents() throws {
        let sweep = try String(contentsOfFile: Harness.root + "/Tests/Fixtures/small-sweep.yaml", encoding: .utf8)
            .replacingOccurrences(of: "max_attempts: 2", with: "max_attempts: 1")
            .replacingOccurrences(of: "{svd_ranks: [2, 4], arsvd_taus: [0.9]}", with: "{svd_ranks: [2], arsvd_taus: []}")
            + "job_timeout: 0.001\n"   // the baseline cannot finish in time: it fails, and its compress job with it
        let c = Cluster("retry", sweep: sweep)
        let coord = try c.startCoordinator()

        // While the coordinator runs, retry is refused and names it.
        let refused = try retry(["--failed"], c, "refused")
        XCTAssertEqual(refused.process.terminationStatus, 1)
        XCTAssertTrue(refused.output.contains("is in use by a running coordinator (pid \(coord.pid))"), refused.output)

        // With one attempt allowed the timed-out baseline fails, and its compress job with it.
        try c.startWorker("first")
        XCTAssertEqual(coord.wait(120), 2, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM jobs WHERE state = 'failed'"), 2)

        let notFailed = try retry(["--job", "nope"], c, "unknown")
        XCTAssertEqual(notFailed.process.terminationStatus, 1)
        XCTAssertTrue(notFailed.output.contains("has no job nope"), notFailed.output)

        let ok = try retry(["--job", "train-s1"], c, "ok")
        XCTAssertEqual(ok.process.terminationStatus, 0, ok.output)
        XCTAssertTrue(ok.output.contains("requeued 2 job(s) with a fresh attempt budget: train-s1, svd-r2-s1"), ok.output)
        let rows = try c.store().jobs()
        XCTAssertEqual(rows.map(\.state), [.queued, .queued])
        XCTAssertEqual(rows.map(\.failures), [0, 0])

        let again = try c.startCoordinator(extra: ["--job-timeout", "600"], tag: "-2")
        try c.startWorker("good")
        XCTAssertEqual(again.wait(120), 0, again.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 2)
        let attempts = try c.store().attempts(job: "train-s1")
        XCTAssertEqual(attempts.map(\.outcome), [.failed, .done], "the retry is attempt 2; attempt 1 stays in the history")
        XCTAssertTrue(attempts[0].reason?.contains("timed out") ?? false, "\(attempts)")
    }
}
