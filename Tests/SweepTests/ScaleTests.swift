import Foundation
import XCTest
@testable import Sweep

/// Many workers at once: the listen backlog, reconnect jitter, and a swarm of simulated workers
/// against a real coordinator process.
final class ScaleTests: XCTestCase {
    /// The kernel's accept queue of the coordinator's socket is sized from the worker cap, not
    /// libzmq's default of 100 (`ss` shows a listening socket's backlog as its Send-Q).
    func testListenBacklogFollowsTheWorkerCap() throws {
        XCTAssertEqual(Coordinator.listenBacklog, Int32(Coordinator.maxLiveWorkers))
        let somaxconn = Int((try? String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 4096
        let cluster = Cluster("backlog", sweep: "noop: 1\n")
        let coordinator = try cluster.startCoordinator()
        XCTAssertTrue(coordinator.process.isRunning, coordinator.output)
        let ss = try TestChild("/usr/bin/ss", ["-ltnH", "sport = :\(cluster.port)"], environment: Harness.env, log: cluster.dir + "/ss.txt")
        ss.waitUntilExit()
        let line = (try String(contentsOfFile: cluster.dir + "/ss.txt", encoding: .utf8)).split(separator: "\n").first ?? ""
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        XCTAssertGreaterThanOrEqual(fields.count, 3, "ss printed: \(line)")
        XCTAssertEqual(fields.first, "LISTEN", "ss printed: \(line)")
        XCTAssertEqual(Int(fields[2]), min(Int(Coordinator.listenBacklog), somaxconn), "ss printed: \(line)")
        coordinator.kill9()
    }

    /// Back-off waits are spread over [ms/2, ms], never beyond, and not all alike.
    func testReconnectBackOffIsJittered() {
        var random = SystemRandomNumberGenerator()
        let waits = (0..<1000).map { _ in Wire.jittered(800, using: &random) }
        XCTAssertTrue(waits.allSatisfy { (400...800).contains($0) }, "\(waits.min()!)...\(waits.max()!)")
        XCTAssertGreaterThan(Set(waits).count, 100)
        XCTAssertEqual(Wire.jittered(1, using: &random), 1)
        XCTAssertEqual(Wire.jittered(0, using: &random), 0)
    }

    /// Hundreds of workers connecting in the same instant are all welcomed, and every job is
    /// done exactly once (read from the coordinator's store).
    func testASwarmConnectingAtOnceIsAllWelcomedAndEveryJobRunsOnce() throws {
        let dir = Harness.tempDir("swarm")
        defer { Harness.removeTempDir(dir) }
        let settings = SwarmBenchmark.Settings(workers: 400, jobSeconds: 0.05, jobsPerWorker: 2, executable: Harness.binary, directory: dir)
        let report = try SwarmBenchmark.run(settings) { _ in }
        XCTAssertEqual(report.welcomed, 400)
        XCTAssertEqual(report.jobs, 800)
        XCTAssertEqual(report.storeDone, 800)
        XCTAssertEqual(report.storeAttempts, 800)
        XCTAssertEqual(report.duplicateJobs, 0)
        XCTAssertTrue(report.exactlyOnce)
        XCTAssertGreaterThan(report.efficiency, 0)
        XCTAssertLessThanOrEqual(report.efficiency, 1.0001)
    }

    func testSwarmSettingsAreBounded() {
        let ok = SwarmBenchmark.Settings(workers: 10, jobSeconds: 0.5, jobsPerWorker: 20, executable: "x", directory: "/tmp/x")
        XCTAssertNil(ok.problem)
        var bad = ok; bad.workers = 0
        XCTAssertTrue(bad.problem?.contains("--simulated-workers") == true)
        bad = ok; bad.jobSeconds = -1
        XCTAssertTrue(bad.problem?.contains("--job-seconds") == true)
        bad = ok; bad.jobSeconds = .nan
        XCTAssertTrue(bad.problem?.contains("--job-seconds") == true)
        bad = ok; bad.jobsPerWorker = 0
        XCTAssertTrue(bad.problem?.contains("--jobs-per-worker") == true)
    }
}
