import Basics
import Foundation
import XCTest
@testable import Sweep

/// `status --connect` (STATUS answered by a running coordinator) and the per-job timeout, with
/// real processes on 127.0.0.1 (Harness: 100 ms heartbeats).
final class StatusAndTimeoutTests: XCTestCase {
    // MARK: per-job timeout

    /// A child-process sleep far longer than job_timeout: each attempt is cancelled (its child is
    /// killed), fails with "timed out after 1 s", and the job fails after max_attempts; other jobs finish.
    func testHungJobIsCancelledAndFailsAfterMaxAttempts() throws {
        let c = Cluster("timeout", sweep: "noop: 3\nsleep: {count: 1, seconds: 60, in_child: true}\njob_timeout: 1\nmax_attempts: 2\n")
        let coord = try c.startCoordinator()
        let w = try c.startWorker("a")
        eventually(10, "attempt 1 timed out") {
            c.count("SELECT COUNT(*) FROM attempts WHERE job = 'sleep-1' AND attempt = 1 AND reason LIKE 'timed out%'") == 1
        }
        // The worker killed attempt 1's child (its work dir names the attempt); the worker lives on.
        eventually(3, "attempt 1's job process gone") { Self.processes(containing: "/jobs/sleep-1-a1-").isEmpty }
        XCTAssertTrue(w.process.isRunning)
        XCTAssertEqual(coord.wait(15), 2, "exit 2: a job failed\n" + coord.output)
        let attempts = try c.store().rows("SELECT attempt, outcome, reason FROM attempts WHERE job = 'sleep-1' ORDER BY attempt")
        XCTAssertEqual(attempts.map { $0["attempt"]! }, ["1", "2"])
        for a in attempts {
            XCTAssertEqual(a["outcome"], "failed")
            XCTAssertEqual(a["reason"], "timed out after 1 s")
        }
        let job = try c.store().rows("SELECT state, reason FROM jobs WHERE id = 'sleep-1'").first
        XCTAssertEqual(job?["state"], "failed")
        XCTAssertEqual(job?["reason"]?.components(separatedBy: "timed out after 1 s").count, 3, job?["reason"] ?? "")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'timeout'"), 2)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 3, "the noop jobs finished")
        XCTAssertTrue(w.output.contains("cancelled sleep-1 attempt 1: timed out after 1 s"), w.output)
    }

    /// A worker that ignores CANCEL and sends DONE for the timed-out attempt later: dropped as stale;
    /// the next attempt's DONE is the result.
    func testLateDoneOfTimedOutAttemptIsDropped() throws {
        let c = Cluster("latedone", sweep: "sleep: {count: 1, seconds: 0.1}\njob_timeout: 0.5\nmax_attempts: 2\n")
        let coord = try c.startCoordinator()
        let fake = try FakeWorker(endpoint: c.endpoint, id: "fake-1")
        let job1 = try fake.waitFor("JOB", 5)
        XCTAssertEqual(job1["attempt"] as? Int, 1)
        let cancel = try fake.waitFor("CANCEL", 5)
        XCTAssertEqual(cancel["attempt"] as? Int, 1)
        XCTAssertEqual(cancel["reason"] as? String, "timed out after 0.5 s")
        let job2 = try fake.waitFor("JOB", 5)
        XCTAssertEqual(job2["attempt"] as? Int, 2)
        try fake.done(job: "sleep-1", attempt: 1)  // late: attempt 1 timed out
        try fake.done(job: "sleep-1", attempt: 2)
        _ = try fake.waitFor("BYE", 5)
        XCTAssertEqual(coord.wait(10), 0, coord.output)
        XCTAssertEqual(try c.store().rows("SELECT attempt FROM results").map { $0["attempt"]! }, ["2"])
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'duplicate-done' AND attempt = 1"), 1)
        XCTAssertEqual(try c.store().rows("SELECT reason FROM attempts WHERE attempt = 1").first?["reason"], "timed out after 0.5 s")
    }

    // MARK: status --connect

    func testStatusConnectShowsLiveCountsAndNeverRegistersTheClient() throws {
        let c = Cluster("statusconnect", sweep: "noop: 5\nsleep: {count: 2, seconds: 30}\n")
        try c.startCoordinator()
        try c.startWorker("a")
        eventually(10, "noops done, sleep-1 running") {
            c.count("SELECT COUNT(*) FROM results") == 5 && c.count("SELECT COUNT(*) FROM jobs WHERE state = 'running'") == 1
        }
        let p = try Proc(["status", "--connect", c.endpoint], log: c.dir + "/status.log")
        XCTAssertEqual(p.wait(10), 0, p.output)
        let out = p.output
        XCTAssertTrue(out.contains("sweep at \(c.endpoint): 7 jobs — 5 done, 1 queued, 1 running"), out)
        XCTAssertTrue(out.contains("attempts: 5 done, 1 running"), out)
        XCTAssertTrue(out.range(of: #"a-\S+ on \S+ \(alive, 1 slot\(s\), seen \d+s ago\): sleep-1 attempt 1"#, options: .regularExpression) != nil, out)
        // Same information, same renderer, from the state dir.
        let q = try Proc(["status", "--state-dir", c.stateDir], log: c.dir + "/status-dir.log")
        XCTAssertEqual(q.wait(10), 0, q.output)
        XCTAssertTrue(q.output.contains("sweep in \(c.stateDir): 7 jobs — 5 done, 1 queued, 1 running"), q.output)
        XCTAssertTrue(q.output.contains("attempts: 5 done, 1 running"), q.output)

        // A raw client: STATUS gets a snapshot; a DONE from it is not a result (it is no worker).
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .dealer)
        try s.connect(c.endpoint)
        try s.send(WireMessage(.status, StatusHeader()).frames)
        let reply = try FakeWorker.receive(s, 3)
        XCTAssertEqual(reply.command, .statusReply)
        let snap = try JSONDecoder().decode(SweepStatus.self, from: Data(reply.payload[0]))
        XCTAssertEqual(snap.total, 7)
        XCTAssertEqual(snap.count(.done), 5)
        try s.send(WireMessage.done(DoneHeader(job: "sleep-2", attempt: 1, artifacts: [:], seconds: 0), result: Array("{}".utf8)).frames)
        XCTAssertEqual(try FakeWorker.receive(s, 3).command, .bye)
        usleep(200_000)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 5)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM workers"), 1, "status clients are never registered as workers")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE worker NOT LIKE 'a-%'"), 0, "nor given jobs")
    }

    func testStatusConnectWithNobodyThereFailsWithOneLine() throws {
        let dir = Harness.tempDir("statusnone")
        let p = try Proc(["status", "--connect", "tcp://127.0.0.1:\(Harness.freePort())", "--timeout", "0.5"], log: dir + "/status.log")
        XCTAssertEqual(p.wait(10), 1)
        let lines = p.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, p.output)
        XCTAssertTrue(p.output.hasPrefix("Error: no answer from tcp://127.0.0.1:"), p.output)
        XCTAssertTrue(p.output.contains("within 0.5 s"), p.output)
    }

    func testStatusConnectOverCurveNeedsAnAllowedKey() throws {
        let c = Cluster("statuscurve", sweep: "noop: 3\nsleep: {count: 1, seconds: 30}\n")
        let keys = c.dir + "/keys", ck = c.dir + "/ckeys"
        for (dir, name) in [(keys, "coordinator"), (ck, "ops"), (ck, "rogue")] {
            XCTAssertEqual(try Proc(["keygen", "--out", dir, "--name", name], log: c.dir + "/keygen.log").wait(10), 0)
        }
        try FileManager.default.createDirectory(atPath: keys + "/workers", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ck + "/ops.pub", toPath: keys + "/workers/ops.pub")
        let coord = try c.startCoordinator(extra: ["--keys", keys])
        let server = ["--server-key", keys + "/coordinator.pub"]

        let rogue = try Proc(["status", "--connect", c.endpoint, "--key", ck + "/rogue.key", "--timeout", "2"] + server, log: c.dir + "/rogue.log")
        XCTAssertEqual(rogue.wait(10), 1, rogue.output)
        XCTAssertTrue(rogue.output.hasPrefix("Error: "), rogue.output)
        XCTAssertTrue(rogue.output.contains("not in the coordinator's allowlist"), rogue.output)
        XCTAssertFalse(rogue.output.contains("jobs —"), rogue.output)
        let roguePub = try CurveKeyPair.readKey(ck + "/rogue.pub", what: "key")
        eventually(3, "refusal logged with the key") { coord.output.contains("refused worker key \(roguePub)") }

        let plain = try Proc(["status", "--connect", c.endpoint, "--timeout", "1"], log: c.dir + "/plain.log")
        XCTAssertEqual(plain.wait(10), 1, plain.output)
        XCTAssertFalse(plain.output.contains("jobs —"), plain.output)

        let ok = try Proc(["status", "--connect", c.endpoint, "--key", ck + "/ops.key"] + server, log: c.dir + "/ok.log")
        XCTAssertEqual(ok.wait(10), 0, ok.output)
        XCTAssertTrue(ok.output.contains("4 jobs — 4 queued"), ok.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM workers"), 0)
    }

    // MARK: helpers

    /// Pids whose command line contains `text`.
    static func processes(containing text: String) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { Int32($0) }.filter { pid in
            guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: d.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        }
    }
}

/// A hand-driven worker on a raw DEALER: HELLO, READY, heartbeats while it waits, and results
/// whenever the test says (it ignores CANCEL, like a worker whose job would not die).
final class FakeWorker {
    let ctx: ZMQContext
    let socket: ZMQSocket
    var lastSent = 0.0

    init(endpoint: String, id: String) throws {
        ctx = try ZMQContext()
        socket = try ZMQSocket(ctx, .dealer)
        try socket.setIdentity(id + "/1")
        try socket.connect(endpoint)
        try send(WireMessage(.hello, HelloHeader(worker: id, host: "fake", pid: 1, cores: 1, slots: 1, threads: 1, running: [])))
        _ = try waitFor("WELCOME", 5)
        try send(WireMessage(.ready, header: WireMessage.emptyHeader))
    }

    func send(_ m: WireMessage) throws {
        try socket.send(m.frames)
        lastSent = monotonicSeconds()
    }

    func done(job: String, attempt: Int) throws {
        try send(WireMessage.done(DoneHeader(job: job, attempt: attempt, artifacts: [:], seconds: 0.1), result: Array("{\"fake\":true}".utf8)))
    }

    /// Waits for a message with this command (heartbeating meanwhile); returns its header fields.
    func waitFor(_ command: String, _ seconds: Double) throws -> [String: Any] {
        let end = monotonicSeconds() + seconds
        while monotonicSeconds() < end {
            if monotonicSeconds() - lastSent >= 0.1 { try send(WireMessage(.heartbeat, header: WireMessage.emptyHeader)) }
            guard try ZMQPoll.readable([socket], timeoutMs: 50)[0], let frames = try socket.receive(dontWait: true) else { continue }
            let m = try WireMessage.parse(frames[...])
            if m.command.rawValue == command {
                return (try JSONSerialization.jsonObject(with: Data(m.header)) as? [String: Any]) ?? [:]
            }
        }
        throw SweepError.io("no \(command) within \(seconds) s")
    }

    static func receive(_ s: ZMQSocket, _ seconds: Double) throws -> WireMessage {
        guard try ZMQPoll.readable([s], timeoutMs: Int(seconds * 1000))[0], let frames = try s.receive() else {
            throw SweepError.io("no reply within \(seconds) s")
        }
        return try WireMessage.parse(frames[...])
    }
}

final class StatusAndTimeoutUnitTests: XCTestCase {
    func testJobTimeoutKeyParsesAndNamesBadValues() throws {
        XCTAssertEqual(try SweepSpec.parse(yaml: "noop: 1\njob_timeout: 2.5\n", file: "s.yaml").jobTimeout, 2.5)
        XCTAssertEqual(try SweepSpec.parse(yaml: "noop: 1\njob_timeout: 600\n", file: "s.yaml").jobTimeout, 600)
        XCTAssertNil(try SweepSpec.parse(yaml: "noop: 1\n", file: "s.yaml").jobTimeout)
        for (bad, why) in [("-1", "must be positive"), ("0", "must be positive"), ("soon", "must be a number")] {
            XCTAssertThrowsError(try SweepSpec.parse(yaml: "noop: 1\njob_timeout: \(bad)\n", file: "s.yaml")) {
                XCTAssertTrue("\($0)".hasPrefix("s.yaml: job_timeout (line 2) \(why)"), "\($0)")
            }
        }
        XCTAssertEqual(Coordinator.seconds(1), "1")
        XCTAssertEqual(Coordinator.seconds(0.5), "0.5")
    }

    func testOneRendererAndSnapshotSurvivesTheWire() throws {
        var s = SweepStatus()
        s.total = 10
        s.jobs = ["done": 6, "queued": 2, "running": 1, "failed": 1]
        s.workers = [.init(id: "w2", host: "h2", state: "alive", slots: 2, seenAgo: 0.4, running: []),
                     .init(id: "w1", host: "h1", state: "alive", slots: 1, seenAgo: 1.2,
                           running: [.init(job: "train-s42", attempt: 2, epoch: 3, epochs: 8)])]
        s.attempts = ["done": 6, "failed": 2, "running": 1]
        s.rate = 0.5
        s.failedJobs = [.init(job: "fail-1", reason: "boom")]
        let decoded = try JSONDecoder().decode(SweepStatus.self, from: JSONEncoder().encode(s))
        XCTAssertEqual(decoded, s)
        XCTAssertEqual(decoded.render(source: "at tcp://x:1"), """
            sweep at tcp://x:1: 10 jobs — 6 done, 1 failed, 2 queued, 1 running
            workers:
              w1 on h1 (alive, 1 slot(s), seen 1s ago): train-s42 attempt 2, epoch 3/8
              w2 on h2 (alive, 2 slot(s), seen 0s ago): idle
            attempts: 6 done, 2 failed, 1 running
            ETA: about 6s at the rate so far (0.50 jobs/s)
            failed fail-1: boom
            """)
        s.jobs = ["done": 9, "failed": 1]
        XCTAssertTrue(s.render(source: "in d").contains("\ncomplete\n"))
    }
}

final class JobTimeoutKillTests: XCTestCase {
    /// A job process that ignores SIGTERM is SIGKILLed after the grace period once its attempt timed out.
    func testTimedOutJobIgnoringSigtermIsKilled() throws {
        let c = Cluster("hang", sweep: "jobs: [{kind: hang, count: 1}]\njob_timeout: 0.5\nmax_attempts: 1\n")
        let coord = try c.startCoordinator()
        let w = try c.startWorker("a", extra: ["--stay"])  // stays after the sweep: PDEATHSIG proves nothing here
        eventually(10, "hang job process started") { !StatusAndTimeoutTests.processes(containing: "/jobs/hang-1-a1-").isEmpty }
        XCTAssertEqual(coord.wait(10), 2, coord.output)
        XCTAssertTrue(w.process.isRunning)
        eventually(JobControl.killGrace + 2, "hang process killed") { StatusAndTimeoutTests.processes(containing: "/jobs/hang-1-a1-").isEmpty }
        eventually(2, "SIGKILL logged") { w.output.contains("after SIGTERM: SIGKILL") }
        XCTAssertEqual(try c.store().rows("SELECT reason FROM attempts").first?["reason"], "timed out after 0.5 s")
        w.term()
    }
}
