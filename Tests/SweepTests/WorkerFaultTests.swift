import Foundation
import TestSupport
import XCTest
@testable import Sweep

/// Real workers with the faults they can be given (`--fault`, `WorkerFaults`), where a stand-in
/// peer would only show what the stand-in does.
final class WorkerFaultTests: XCTestCase {
    /// `stall-after-jobs=1`: a worker freezes right after its first DONE (no heartbeats, its other
    /// slot's job never reported). The coordinator declares it dead, hands that job to a healthy
    /// worker, and every job ends with exactly one result.
    func testStalledWorkerIsDeclaredDeadAndItsJobRunsElsewhere() throws {
        let c = Cluster("stall", sweep: "sleep: {count: 4, seconds: 0.3}\n")
        let coord = try c.startCoordinator()
        let stalled = try c.startWorker("a", extra: ["--slots", "2", "--fault", "stall-after-jobs=1"])
        defer { stalled.kill9() }
        eventually(20, "the stalled worker's open attempt declared dead") {
            c.count("SELECT COUNT(*) FROM attempts WHERE outcome = 'dead' AND worker LIKE 'a-%'") >= 1
        }
        XCTAssertTrue(stalled.output.contains("fault stall-after-jobs=1: freezing forever"), stalled.output)
        try c.startWorker("b")
        XCTAssertEqual(coord.wait(30), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 4)
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT job) FROM results"), 4, "every job exactly once")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker LIKE 'a-%'"), 1, "the one DONE sent before the stall")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'done'"), 4)
        let dead = try c.store().rows("SELECT job FROM attempts WHERE outcome = 'dead' AND worker LIKE 'a-%'").compactMap { $0["job"] }
        for job in dead {
            XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE job = '\(job)' AND worker LIKE 'b-%'"), 1, "\(job) finished on b")
        }
    }
}
