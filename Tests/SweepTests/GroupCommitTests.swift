import Basics
import Foundation
import XCTest
@testable import Sweep

/// Issue 26: the coordinator commits on a thread of its own (GroupCommitter) and ACKs a result only
/// once the commit that covers it is reported; a coordinator too busy to read its queue does not
/// declare dead the workers whose messages wait in it.
final class GroupCommitTests: XCTestCase {
    static func secret() -> String { String(UInt64.random(in: 0 ... .max), radix: 16) + String(UInt64.random(in: 0 ... .max), radix: 16) }
    static let v = Wire.version

    /// The committer held before its transaction: the coordinator keeps dispatching (the next JOB
    /// comes) but sends no ACK, and the store holds no result; let go, the ACK comes, and by then
    /// the result is in the store.
    func testNoDoneIsAckedBeforeItsCommit() throws {
        let dir = Harness.tempDir("commit-gate")
        defer { Harness.removeTempDir(dir) }
        let gate = Gate()
        defer { gate.open() }
        let run = try InProcessCoordinator(dir: dir, noop: 2, timing: Timing(heartbeatMs: 100, liveness: 100)) { c in
            c.commitGate = { gate.pass() }
        }
        let peer = try HostilePeer(endpoint: try run.endpoint(20))
        try peer.hello(id: "w1", secret: Self.secret())
        _ = try peer.waitFor("WELCOME", 20)
        try peer.send("READY", "{\"v\":\(Self.v)}")
        let first = try peer.waitFor("JOB", 20)
        let job = try XCTUnwrap(first["job"] as? String), attempt = try XCTUnwrap(first["attempt"] as? Int)
        try peer.done(job, "\(attempt)")
        let second = try peer.waitFor("JOB", 20)
        // Two STATUS round trips: the DONE was handled and at least one more cycle ran after it.
        try peer.roundTrip()
        try peer.roundTrip()
        XCTAssertNil(peer.counts["ACK"], "an ACK left before its result was committed")
        let store = try SweepStore(stateDir: dir, readOnly: true)
        XCTAssertEqual(try store.count("SELECT COUNT(*) FROM results"), 0, "the gate holds every commit")

        gate.open()
        let ack = try peer.waitFor("ACK", 20)
        XCTAssertEqual(try store.count("SELECT COUNT(*) FROM results WHERE job = '\(job)' AND attempt = \(attempt)"), 1,
                       "the ACK (\(ack)) came after the commit holding the result")
        try peer.done(try XCTUnwrap(second["job"] as? String), "\(try XCTUnwrap(second["attempt"] as? Int))")
        _ = try peer.waitFor("BYE", 20)
        let summary = try run.wait(30)
        XCTAssertEqual(summary.done, 2)
        XCTAssertEqual(try store.count("SELECT COUNT(*) FROM results"), 2)
    }

    /// The coordinator exits abruptly just before the transaction holding its third result: that
    /// result was never ACKed, so the worker keeps it and resends it to the next coordinator, which
    /// accepts it for the same attempt. Every job is done once, none run a second attempt.
    func testACrashBeforeTheCommitLosesNoResult() throws {
        _ = try crashAtCommit("before-done:3")
    }

    /// The coordinator exits abruptly after committing its third result but before any ACK for it:
    /// the worker resends it, the next coordinator drops it as a duplicate and ACKs it; nothing is
    /// lost or done twice.
    func testACrashBetweenCommitAndAckLosesNothing() throws {
        _ = try crashAtCommit("after-done:3")
    }

    private func crashAtCommit(_ fault: String) throws -> Cluster {
        let c = Cluster("commit-crash", sweep: "noop: 200\n")
        var env = Harness.env
        env["RANKSWEEP_FAULT_COMMIT"] = fault
        let first = try c.startCoordinator(env: env)
        try c.startWorker("a")
        XCTAssertEqual(first.wait(60), 137, first.output)
        XCTAssertTrue(first.output.contains("fault commit=\(fault)"), first.output)
        XCTAssertLessThan(c.count("SELECT COUNT(*) FROM results"), 200, "the crash came before the sweep's end")
        let second = try c.startCoordinator(tag: "-2")
        XCTAssertEqual(second.wait(60), 0, second.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 200)
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT job) FROM results"), 200)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 200)
        // The third result (one worker, one slot: the third job) was sent before the crash and never
        // lost: its first attempt's result is the one recorded, not a rerun's.
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE job = (SELECT id FROM jobs ORDER BY seq LIMIT 1 OFFSET 2) AND attempt = 1"), 1,
                       "\((try? c.store().rows("SELECT * FROM attempts WHERE job = (SELECT id FROM jobs ORDER BY seq LIMIT 1 OFFSET 2)")) ?? [])")
        // A JOB still in the dead coordinator's socket when it exited never reached the worker: that
        // attempt is "orphaned" and the job runs again (a job is never lost, a result never computed
        // twice once sent). Nothing else ended any attempt.
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE outcome NOT IN ('done', 'orphaned') OR outcome IS NULL"), 0,
                       "\((try? c.store().rows("SELECT * FROM attempts WHERE outcome IS NOT 'done'")) ?? [])")
        return c
    }

    /// With at most one message read per cycle (a coordinator that cannot keep up), and the
    /// coordinator stalled past the liveness limit while both workers' DONEs queue up: the first
    /// cycle after the stall reads one of them and leaves the other queued. That worker is silent
    /// by the clock but not dead, so it is not declared dead; its DONE is read next and ACKed.
    /// The same run with expiry allowed on a backlog (the old rule) does declare it dead, so the
    /// setup does reproduce the fault.
    func testABackloggedCoordinatorKeepsWorkersWhoseMessagesWaitInItsQueue() throws {
        let fixed = try backlogRun(waitForDrain: true)
        XCTAssertEqual(fixed.deaths, 0)
        XCTAssertEqual(fixed.attempts, 2, "no job was dispatched twice")
        let old = try backlogRun(waitForDrain: false)
        XCTAssertGreaterThanOrEqual(old.deaths, 1, "the old rule declares a queued worker dead")
        XCTAssertEqual(old.attempts, 3)
    }

    private func backlogRun(waitForDrain: Bool) throws -> (deaths: Int, attempts: Int) {
        let dir = Harness.tempDir("backlog-liveness")
        defer { Harness.removeTempDir(dir) }
        let stalled = LockedFlag()
        // Dead after 3 s of silence; the stall lasts 5 s.
        let run = try InProcessCoordinator(dir: dir, noop: 2, timing: Timing(heartbeatMs: 200, liveness: 15)) { c in
            c.receiveBatch = 1
            c.livenessWaitsForDrain = waitForDrain
            c.cycleHook = { c in
                if !stalled.value && c.workers.count == 2 && c.workers.all.allSatisfy({ !$0.running.isEmpty }) {
                    stalled.value = true
                    usleep(5_000_000)
                }
            }
        }
        let endpoint = try run.endpoint(20)
        let peers = try (0 ..< 2).map { _ in try HostilePeer(endpoint: endpoint) }
        for (k, p) in peers.enumerated() {
            try p.hello(id: "w\(k)", secret: Self.secret())
            _ = try p.waitFor("WELCOME", 20)
            try p.send("READY", "{\"v\":\(Self.v)}")
        }
        // Both JOBs first (a DONE before the other's READY is read would free a slot for the other job).
        // (The stall starts at the end of the cycle that sent the second JOB, so before either
        // DONE can be read.)
        _ = try peers.map { try $0.waitFor("JOB", 20) }
        // Every JOB answered at once (the DONEs of the first two queue up during the stall), until
        // each peer has heard BYE: the sweep's end, or "say HELLO again" for one declared dead.
        var seen = [0, 0]
        let end = monotonicSeconds() + 60
        while peers.contains(where: { !$0.received.contains { $0.0 == "BYE" } }) {
            guard monotonicSeconds() < end else { throw SweepError.io("no BYE within 60 s: \(peers.map { $0.received.map(\.0) })") }
            for (k, p) in peers.enumerated() {
                if monotonicSeconds() - p.lastSent >= 0.1 { try p.send("HEARTBEAT", "{\"v\":\(Self.v)}") } else { p.drain() }
                while seen[k] < p.received.count {
                    let (command, fields) = p.received[seen[k]]
                    seen[k] += 1
                    if command == "JOB", let job = fields["job"] as? String, let attempt = fields["attempt"] as? Int {
                        try p.done(job, "\(attempt)")
                    }
                }
            }
            usleep(5_000)
        }
        let summary = try run.wait(30)
        XCTAssertEqual(summary.done, 2)
        XCTAssertTrue(stalled.value, "the coordinator stalled with both jobs running")
        let store = try SweepStore(stateDir: dir, readOnly: true)
        return (try store.count("SELECT COUNT(*) FROM events WHERE kind = 'worker-dead'"), try store.count("SELECT COUNT(*) FROM attempts"))
    }

    func testCommitFaultSettingsAreParsedStrictly() {
        XCTAssertEqual(CommitFault.parse("before-done:3")?.before, true)
        XCTAssertEqual(CommitFault.parse("after-done:7")?.atDone, 7)
        XCTAssertNil(CommitFault.parse("after-done:0"))
        XCTAssertNil(CommitFault.parse("after-done"))
        XCTAssertNil(CommitFault.parse("sideways:2"))
        XCTAssertNil(CommitFault.parse("before-done:99999999999999999999"))
    }
}

/// A gate the committer passes only once the test opens it.
final class Gate: @unchecked Sendable {
    private let cond = NSCondition()
    private var isOpen = false
    func pass() { cond.lock(); while !isOpen { cond.wait() }; cond.unlock() }
    func open() { cond.lock(); isOpen = true; cond.broadcast(); cond.unlock() }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    var value: Bool {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
}

/// A real coordinator (real sockets, real SQLite) running on a thread of the test process, so a
/// test can set its internal hooks.
final class InProcessCoordinator: @unchecked Sendable {
    private let cond = NSCondition()
    private var bound: String?
    private var outcome: Result<SweepSummary, any Error>?

    init(dir: String, noop: Int, timing: Timing, configure: (Coordinator) -> Void) throws {
        var spec = SweepSpec()
        spec.pipeline = false
        spec.noop = noop
        var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
        o.sweep = spec
        o.progress = .none
        o.timing = timing
        o.onBound = { [self] ep in cond.lock(); bound = ep; cond.broadcast(); cond.unlock() }
        let c = try Coordinator(options: o)
        configure(c)
        let box = CoordinatorBox(c)
        Thread.detachNewThread { [self] in
            let r = Result { try box.coordinator.run() }
            cond.lock(); outcome = r; cond.broadcast(); cond.unlock()
        }
    }

    func endpoint(_ seconds: Double) throws -> String {
        let end = Date().addingTimeInterval(seconds)
        cond.lock(); defer { cond.unlock() }
        while bound == nil && outcome == nil && cond.wait(until: end) {}
        guard let bound else { throw SweepError.io("the coordinator did not bind within \(seconds) s: \(String(describing: outcome))") }
        return bound
    }

    func wait(_ seconds: Double) throws -> SweepSummary {
        let end = Date().addingTimeInterval(seconds)
        cond.lock(); defer { cond.unlock() }
        while outcome == nil && cond.wait(until: end) {}
        guard let outcome else { throw SweepError.io("the coordinator did not finish within \(seconds) s") }
        return try outcome.get()
    }
}

private final class CoordinatorBox: @unchecked Sendable {
    let coordinator: Coordinator
    init(_ c: Coordinator) { coordinator = c }
}
