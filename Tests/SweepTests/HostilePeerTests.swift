import Foundation
import XCTest
@testable import Sweep

/// Issue 13: a hostile peer on loopback — a second process speaking the documented protocol, with
/// CURVE any holder of an allowlisted key — sends each finding as it would; each is refused, and
/// exactly-once holds for the honest worker. Real coordinator and worker processes (Harness: 100 ms
/// heartbeats, dead after 0.5 s), the hostile peer a DEALER in the test process.
final class HostilePeerTests: XCTestCase {
    static let v = Wire.version
    static func secret() -> String { String(UInt64.random(in: 0 ... .max), radix: 16) + String(UInt64.random(in: 0 ... .max), radix: 16) }

    /// Finding 1: a registered peer's DONE/FAILED/PROGRESS/PUT for an attempt open on another worker.
    func testForgedReportsForAnotherWorkersAttemptAreRefused() throws {
        let c = Cluster("forge", sweep: "sleep: {count: 1, seconds: 2}\n")
        let coord = try c.startCoordinator()
        try c.startWorker("a")
        eventually(10, "sleep-1 running on a") { c.openAttempts().contains { $0.0 == "sleep-1" && $0.2.hasPrefix("a-") } }
        let (job, attempt, _) = try XCTUnwrap(c.openAttempts().first)
        let thief = try HostilePeer(endpoint: c.endpoint)
        try thief.hello(id: "thief-1", secret: Self.secret())
        _ = try thief.waitFor("WELCOME", 5)
        try thief.done(job, "\(attempt)")
        try thief.done(job, "\(attempt)", result: "not json")  // would have failed the attempt
        try thief.failed(job, "\(attempt)", handback: false)
        try thief.failed(job, "\(attempt)", handback: true)
        try thief.progress(job, "\(attempt)")
        try thief.put(hash: String(repeating: "ab", count: 32), offset: 0, size: 4, bytes: [1, 2, 3, 4])
        try thief.roundTrip()
        XCTAssertEqual(c.openAttempts().map { "\($0.0) \($0.1) \($0.2.prefix(2))" }, ["\(job) \(attempt) a-"], "a's attempt is untouched")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        let results = try c.store().rows("SELECT job, attempt, worker, result FROM results")
        XCTAssertEqual(results.count, 1)
        XCTAssertTrue(results[0]["worker"]!.hasPrefix("a-"), "\(results)")
        XCTAssertFalse(results[0]["result"]!.contains("forged"), "\(results)")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts"), 1, "one attempt, a's, done")
        XCTAssertEqual(c.count("SELECT SUM(count) FROM events WHERE kind = 'refused' AND worker = 'thief-1'"), 6, "each report refused and counted")
        XCTAssertTrue(coord.output.contains("refused DONE \(job) attempt \(attempt) from thief-1"), coord.output)
    }

    /// Findings 2 and 3: HELLO claiming a job never dispatched to it (attempt 5, and Int64.max) and
    /// reporting on it; out-of-range attempts; the coordinator keeps serving and the claim leaves no trace.
    func testClaimsOfJobsNotDispatchedToThePeerAreRefused() throws {
        let c = Cluster("claim", sweep: "sleep: {count: 2, seconds: 0.2}\n")
        let coord = try c.startCoordinator()
        let thief = try HostilePeer(endpoint: c.endpoint)
        let secret = Self.secret()
        try thief.hello(id: "claimant-1", secret: secret, running: [("sleep-1", "5"), ("sleep-2", "1")])
        let welcome = try thief.waitFor("WELCOME", 5)
        XCTAssertEqual((welcome["cancel"] as? [Any])?.count, 2, "both claims are cancelled: \(welcome)")
        try thief.done("sleep-1", "5")
        try thief.failed("sleep-2", "1", handback: true)
        // The crash of finding 3: a claim of attempt Int64.max, then a handback. Out of range: the
        // HELLO and the FAILED are dropped before anything uses the number.
        try thief.hello(id: "claimant-1", secret: secret, running: [("sleep-2", "9223372036854775807")])
        try thief.failed("sleep-2", "9223372036854775807", handback: true)
        try thief.failed("sleep-2", "9223372036854775807", handback: false)
        for bad in ["-1", "0", "1e300", "9223372036854775808", "4.5", "\"1\""] {
            try thief.hello(id: "claimant-1", secret: secret, running: [("sleep-1", bad)])
            try thief.done("sleep-1", bad)
        }
        try thief.roundTrip()
        XCTAssertEqual(thief.received.filter { $0.0 == "WELCOME" }.count, 1, "no HELLO with an out-of-range attempt is welcomed")
        // Handled before the reply; committed with the cycle (at most a few ms later).
        eventually(5, "15 dropped messages counted") {
            c.count("SELECT COALESCE(SUM(count), 0) FROM events WHERE kind = 'dropped' AND worker = 'claimant-1'") == 15  // 1 + 2 + 6 x 2
        }
        let dropped = try c.store().rows("SELECT detail, count FROM events WHERE kind = 'dropped' AND worker = 'claimant-1'")
        XCTAssertTrue(dropped.first?["detail"]?.contains("out of range") ?? false, "\(dropped)")
        let (rc, out) = try c.statusConnect()
        XCTAssertEqual(rc, 0, out)
        XCTAssertTrue(out.contains("2 jobs — 2 queued"), out)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts"), 0, "a claim opens no attempt")
        XCTAssertEqual(c.count("SELECT MAX(attempt) FROM jobs"), 0)
        try c.startWorker("a")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        XCTAssertEqual(try c.store().rows("SELECT job, attempt FROM results ORDER BY job").map { "\($0["job"]!)/\($0["attempt"]!)" },
                       ["sleep-1/1", "sleep-2/1"])
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker LIKE 'a-%'"), 2)
        XCTAssertFalse(coord.output.contains("Fatal error"), coord.output)
    }

    /// Finding 3's other half: a state dir holding an impossible row (attempt = Int64.max, as the
    /// crash left it) is a one-line error naming table, job and value on every restart — not a
    /// crash loop — and the SQL the error gives repairs it.
    func testImpossibleStoredRowIsAOneLineErrorAndTheGivenSQLRepairsIt() throws {
        let c = Cluster("poisoned", sweep: "sleep: {count: 2, seconds: 0.1}\n")
        let first = try c.startCoordinator()
        eventually(10, "sweep created") { c.count("SELECT COUNT(*) FROM jobs") == 2 }
        first.term()
        XCTAssertNotNil(first.wait(10), first.output)
        try SweepStore(stateDir: c.stateDir).db.write { try $0.execute(sql: "UPDATE jobs SET attempt = 9223372036854775807, state = 'running' WHERE id = 'sleep-2'") }
        var message = ""
        for round in 0 ..< 2 {
            let p = try c.startCoordinator(tag: "-bad\(round)")
            XCTAssertEqual(p.wait(10), 1, "a clean exit 1, not a trap: \(p.output)")
            let errors = p.output.split(separator: "\n").filter { $0.contains("Error") || $0.contains("error:") }
            XCTAssertEqual(errors.count, 1, p.output)
            message = String(errors.first ?? "")
            XCTAssertTrue(message.hasPrefix("Error: "), message)
            for part in ["table jobs", "sleep-2", "attempt 9223372036854775807", c.stateDir] { XCTAssertTrue(message.contains(part), "\(part): \(message)") }
            XCTAssertFalse(p.output.contains("Fatal error"), p.output)
        }
        // The error's repair line, run as given (sqlite3 "..."), makes the state usable again.
        let sql = try XCTUnwrap(message.range(of: "sqlite3 ").map { String(message[$0.upperBound...]) })
        let statement = try XCTUnwrap(sql.split(separator: "\"", omittingEmptySubsequences: false).dropFirst().first)
        try SweepStore(stateDir: c.stateDir).db.write { try $0.execute(sql: String(statement)) }
        let again = try c.startCoordinator(tag: "-repaired")
        try c.startWorker("a")
        XCTAssertEqual(again.wait(20), 0, again.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 2)
    }

    /// Every impossible value the coordinator would compute with is named on open, with its table and job.
    func testStoreValidationNamesEveryImpossibleRow() throws {
        let cases: [(String, [String])] = [
            ("UPDATE jobs SET failures = -1 WHERE id = 'noop-2'", ["table jobs", "noop-2", "failures -1"]),
            ("UPDATE jobs SET max_attempts = 0 WHERE id = 'noop-1'", ["table jobs", "noop-1", "max_attempts 0"]),
            ("UPDATE jobs SET state = 'zombie' WHERE id = 'noop-3'", ["table jobs", "noop-3", "state zombie"]),
            ("UPDATE jobs SET attempt = 'abc' WHERE id = 'noop-1'", ["table jobs", "noop-1", "attempt \"abc\""]),
            ("UPDATE jobs SET attempt = 2.5 WHERE id = 'noop-1'", ["table jobs", "noop-1", "attempt 2.5"]),
            ("UPDATE jobs SET deps = 7 WHERE id = 'noop-2'", ["table jobs", "noop-2", "deps or inputs"]),
            ("UPDATE jobs SET spec = x'00ff' WHERE id = 'noop-2'", ["table jobs", "noop-2", "not text"]),
            ("INSERT INTO attempts(job, attempt, worker, started) VALUES ('noop-1', -5, 'w', 0)", ["table attempts", "noop-1", "attempt -5"]),
            ("INSERT INTO workers(id, host, cores, slots, threads, state, first_seen, last_seen) VALUES (NULL, 'h', 1, 1, 1, 'alive', 0, 0)",
             ["table workers"]),
        ]
        for (sql, parts) in cases {
            let dir = Harness.tempDir("validate")
            var spec = SweepSpec()
            spec.pipeline = false
            spec.noop = 3
            var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
            o.sweep = spec
            o.progress = .none
            _ = try Coordinator(options: o)
            try SweepStore(stateDir: dir).db.write { try $0.execute(sql: sql) }
            XCTAssertThrowsError(try Coordinator(options: o), sql) { e in
                let line = "\(e)"
                XCTAssertFalse(line.contains("\n"), line)
                for p in parts + [dir] { XCTAssertTrue(line.contains(p), "\(p) in: \(line)") }
            }
        }
    }

    /// Finding 4: 2,000 PUTs started and never finished. Uploads per peer are capped, no file
    /// descriptor is held between chunks, and once the peer is silent its temp files are removed.
    /// Bounds: coordinator fds below 64 throughout; `artifacts/tmp` at most the per-peer cap, then empty.
    func testAbandonedUploadsAreBoundedAndRemoved() throws {
        let c = Cluster("uploads", sweep: "sleep: {count: 2, seconds: 0.2}\n")
        let coord = try c.startCoordinator()
        let fdsBefore = ProcFacts.openFDs(coord.pid)
        let peer = try HostilePeer(endpoint: c.endpoint)
        try peer.hello(id: "uploader-1", secret: Self.secret())
        _ = try peer.waitFor("WELCOME", 5)
        try peer.send("READY", "{\"v\":\(Self.v)}")
        _ = try peer.waitFor("JOB", 5)  // an attempt of its own: its uploads are allowed, up to the cap
        let tmp = c.stateDir + "/artifacts/tmp"
        var rng = SplitMix64(seed: 4)
        for i in 0 ..< 2000 {
            let hash = (0 ..< 4).map { _ in String(format: "%016llx", rng.next()) }.joined()
            try peer.put(hash: hash, offset: 0, size: 1 << 20, bytes: [UInt8](repeating: UInt8(i & 255), count: 1024))
            // Paced so that no poll cycle owes it more replies than its queue holds (1,000).
            if i % 200 == 199 { try peer.roundTrip() }
        }
        try peer.roundTrip()
        XCTAssertLessThan(ProcFacts.openFDs(coord.pid), 64, "fds before: \(fdsBefore)")
        XCTAssertLessThanOrEqual(ProcFacts.files(tmp).count, Coordinator.maxUploadsPerWorker)
        XCTAssertGreaterThan(ProcFacts.files(tmp).count, 0, "some uploads were taken (up to the cap)")
        // Still heartbeating, but its uploads are silent: closed after one liveness period.
        eventually(10, "idle uploads closed while the peer lives") {
            _ = try? peer.waitFor("NOTHING", 0.1)
            return ProcFacts.files(tmp).isEmpty
        }
        try peer.roundTrip()
        // Uploads of a peer that then falls silent go with it.
        try peer.put(hash: String(repeating: "cd", count: 32), offset: 0, size: 1 << 20, bytes: [1])
        try peer.roundTrip()
        XCTAssertEqual(ProcFacts.files(tmp).count, 1)
        eventually(10, "upload of the dead peer removed") { ProcFacts.files(tmp).isEmpty }
        XCTAssertLessThan(ProcFacts.openFDs(coord.pid), 64)
        try c.startWorker("a")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker LIKE 'a-%'"), 2)
    }

    /// Findings 5 and 6: a READY whose header is not JSON (`{"v":02}`) is refused, and a flood of
    /// malformed messages adds a bounded number of event rows: one per peer and minute, with the
    /// count and the first example.
    func testNonJSONRefusedAndFloodEventsAggregated() throws {
        let c = Cluster("flood", sweep: "sleep: {count: 1, seconds: 0.1}\n")
        let coord = try c.startCoordinator()
        let peer = try HostilePeer(endpoint: c.endpoint)
        try peer.hello(id: "flooder-1", secret: Self.secret())
        _ = try peer.waitFor("WELCOME", 5)
        try peer.send("READY", "{\"v\":02}")
        try peer.roundTrip()
        try peer.roundTrip()  // any JOB from the first cycle would have arrived before this reply
        XCTAssertFalse(peer.received.contains { $0.0 == "JOB" }, "a READY that is not JSON must not make the peer ready")
        let stranger = try HostilePeer(endpoint: c.endpoint)
        var rng = SplitMix64(seed: 6)
        for i in 0 ..< 10_000 {
            let bad = ["{\"v\":+1}", "{\"v\":1,}", "[", "{\"v\":\(Self.v),\"v\":\(Self.v)}", "{\"v\":\(Self.v),\"job\":5}"][i % 5]
            try peer.send(["PUT", "DONE", "FAILED", "GET"][Int(rng.next() % 4)], bad)
            try stranger.sendFrames([Array("X\(i)".utf8), [UInt8(truncatingIfNeeded: rng.next())]])
            // Malformed messages do not count as signs of life: heartbeat like a worker.
            if i % 200 == 0 { try peer.send("HEARTBEAT", "{\"v\":\(Self.v)}") }
        }
        try peer.roundTrip()
        try stranger.roundTrip()
        eventually(5, "aggregated counts committed") {
            c.count("SELECT COALESCE(SUM(count), 0) FROM events WHERE kind = 'dropped'") == 20_001
        }
        // One row per peer and minute, however long the flood took on this machine.
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM (SELECT worker, CAST(time / 60 AS INTEGER) AS minute FROM events WHERE kind = 'dropped' GROUP BY worker, minute HAVING COUNT(*) > 1)"), 0)
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT worker) FROM events WHERE kind = 'dropped'"), 2, "the flooder and the stranger")
        let first = try c.store().rows("SELECT detail FROM events WHERE kind = 'dropped' AND worker = 'flooder-1' ORDER BY id").first?["detail"] ?? ""
        XCTAssertTrue(first.contains("READY header is not a JSON object"), first)
        XCTAssertLessThan(ProcFacts.size(c.stateDir + "/" + SweepStore.fileName) + ProcFacts.sizeIfPresent(c.stateDir + "/sweep.sqlite-wal"), 2 << 20)
        try peer.send("READY", "{\"v\":\(Self.v)}")
        let job = try peer.waitFor("JOB", 5)
        try peer.done(job["job"] as! String, "\(job["attempt"] as! Int)", result: "{}")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
    }

    /// Finding 7: HELLOs claiming a connected worker's id (without its secret) are refused; the
    /// worker loses nothing. A connection registered as one id cannot become another.
    func testIdentityTheftIsRefusedAndTheWorkerLosesNoJob() throws {
        let c = Cluster("theft", sweep: "noop: 100\nsleep: {count: 8, seconds: 0.3}\n")
        let coord = try c.startCoordinator()
        try c.startWorker("a")
        eventually(10, "a registered") { c.count("SELECT COUNT(*) FROM workers") == 1 }
        let victim = try XCTUnwrap(try c.store().rows("SELECT id FROM workers").first?["id"])
        var refusals = 0
        for i in 0 ..< 20 {
            let thief = try HostilePeer(endpoint: c.endpoint, routingID: i % 2 == 0 ? nil : "\(victim)/\(i + 2)")
            try thief.hello(id: victim, secret: Self.secret(), running: [("sleep-1", "1")])
            let bye = try thief.waitFor("BYE", 5, heartbeat: false)
            if bye["code"] as? String == "refused" { refusals += 1 }
            XCTAssertFalse(thief.received.contains { $0.0 == "WELCOME" })
        }
        XCTAssertEqual(refusals, 20)
        let twoFaced = try HostilePeer(endpoint: c.endpoint)
        try twoFaced.hello(id: "first-1", secret: Self.secret())
        _ = try twoFaced.waitFor("WELCOME", 5)
        try twoFaced.hello(id: "second-1", secret: Self.secret())
        XCTAssertEqual(try twoFaced.waitFor("BYE", 5)["code"] as? String, "refused")
        XCTAssertEqual(coord.wait(30), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE outcome = 'lost'"), 0, "no job lost to a thief")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker = '\(victim)'"), 108)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM workers WHERE id = 'second-1'"), 0)
        XCTAssertTrue(coord.output.contains("refused HELLO for worker \(victim)"), coord.output)
    }

    /// With CURVE: a second allowlisted key cannot act for the first — not by its worker id, not
    /// with the id's secret, not by reporting on its attempts.
    func testCurveSecondAllowlistedKeyCannotActForTheFirst() throws {
        let c = Cluster("curvehostile", sweep: "sleep: {count: 2, seconds: 1}\n")
        let keys = c.dir + "/keys", wk = c.dir + "/wkeys"
        for (dir, name) in [(keys, "coordinator"), (wk, "good"), (wk, "evil")] {
            XCTAssertEqual(try Proc(["keygen", "--out", dir, "--name", name], log: c.dir + "/keygen.log").wait(10), 0)
        }
        try FileManager.default.createDirectory(atPath: keys + "/workers", withIntermediateDirectories: true)
        for n in ["good", "evil"] { try FileManager.default.copyItem(atPath: wk + "/\(n).pub", toPath: keys + "/workers/\(n).pub") }
        let coord = try c.startCoordinator(extra: ["--keys", keys])
        let server = try CurveKeyPair.readKey(keys + "/coordinator.pub", what: "key")
        let good = try CurveKeyPair(secretKey: CurveKeyPair.readKey(wk + "/good.key", what: "key"))
        let evil = try CurveKeyPair(secretKey: CurveKeyPair.readKey(wk + "/evil.key", what: "key"))
        try c.startWorker("good", extra: ["--key", wk + "/good.key", "--server-key", keys + "/coordinator.pub"])
        eventually(10, "good runs a job") { c.openAttempts().contains { $0.2.hasPrefix("good-") } }
        let victim = try XCTUnwrap(c.openAttempts().first { $0.2.hasPrefix("good-") })

        // The evil key claims the good worker's id: refused.
        let e1 = try HostilePeer(endpoint: c.endpoint, curve: (evil, server))
        try e1.hello(id: victim.2, secret: Self.secret(), running: [(victim.0, "\(victim.1)")])
        XCTAssertEqual(try e1.waitFor("BYE", 5, heartbeat: false)["code"] as? String, "refused")
        // Registered under its own id, it reports on the good worker's attempt: refused.
        let e2 = try HostilePeer(endpoint: c.endpoint, curve: (evil, server))
        try e2.hello(id: "evil-1", secret: "shared-secret-0123456789abcdef")
        _ = try e2.waitFor("WELCOME", 5)
        try e2.done(victim.0, "\(victim.1)")
        try e2.failed(victim.0, "\(victim.1)", handback: true)
        try e2.roundTrip()
        // An id is bound to the key that first used it: even its secret does not move it to another key.
        let g2 = try HostilePeer(endpoint: c.endpoint, curve: (good, server))
        try g2.hello(id: "evil-1", secret: "shared-secret-0123456789abcdef")
        XCTAssertEqual(try g2.waitFor("BYE", 5, heartbeat: false)["code"] as? String, "refused")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        let results = try c.store().rows("SELECT worker, result FROM results")
        XCTAssertEqual(results.count, 2)
        XCTAssertTrue(results.allSatisfy { $0["worker"]!.hasPrefix("good-") && !$0["result"]!.contains("forged") }, "\(results)")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE worker NOT LIKE 'good-%'"), 0)
        XCTAssertEqual(try c.store().rows("SELECT key FROM workers WHERE id = 'evil-1'").first?["key"], evil.publicKey)
    }
}
