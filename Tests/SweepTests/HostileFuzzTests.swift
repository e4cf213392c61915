import Foundation
import XCTest
@testable import Sweep

/// Issue 13's fuzz test: a real coordinator runs a sweep with a real worker while a hostile peer
/// sends 100,000 seeded messages — random frames, every command with missing and wrong-typed
/// fields, forged DONE/FAILED/PROGRESS/PUT for the honest worker's open attempts, claims, huge and
/// negative numbers, id theft, STATUS floods, oversized frames, abandoned uploads.
///
/// Asserts: the coordinator answers `status --connect` after the flood; the sweep completes with
/// every job done exactly once and no result from the hostile peer; and the coordinator stays
/// within these bounds (a flood costs it nothing that grows with the number of messages):
/// - open file descriptors: below 64 at every sample (about 15 at rest, plus one per connection);
/// - resident memory: below 128 MiB at every sample (about 40 MiB seen);
/// - database (sweep.sqlite + WAL): below 4 MiB at the end (about 0.3 MiB seen);
/// - events recording refused or malformed messages: one row per peer, kind and minute (and at most 60);
/// - `artifacts/tmp` empty one liveness period after the peer falls silent.
final class HostileFuzzTests: XCTestCase {
    func testHostileFloodDuringASweep() throws { try flood(curve: false, messages: 100_000, seed: 13) }

    func testHostileFloodDuringASweepOverCurve() throws { try flood(curve: true, messages: 100_000, seed: 1313) }

    static let maxFDs = 64
    static let maxRSSKiB = 128 * 1024
    static let maxDatabaseBytes: Int64 = 4 << 20
    static let maxAbuseEventRows = 60

    func flood(curve: Bool, messages: Int, seed: UInt64) throws {
        let c = Cluster(curve ? "fuzzcurve" : "fuzz", sweep: "noop: 200\nsleep: {count: 400, seconds: 0.2}\nmax_attempts: 3\n")
        var coordExtra: [String] = [], workerExtra: [String] = [], statusExtra: [String] = []
        var hostileCurve: (CurveKeyPair, String)? = nil
        if curve {
            let keys = c.dir + "/keys", wk = c.dir + "/wkeys"
            for (dir, name) in [(keys, "coordinator"), (wk, "honest"), (wk, "hostile")] {
                XCTAssertEqual(try Proc(["keygen", "--out", dir, "--name", name], log: c.dir + "/keygen.log").wait(10), 0)
            }
            try FileManager.default.createDirectory(atPath: keys + "/workers", withIntermediateDirectories: true)
            for n in ["honest", "hostile"] { try FileManager.default.copyItem(atPath: wk + "/\(n).pub", toPath: keys + "/workers/\(n).pub") }
            coordExtra = ["--keys", keys]
            workerExtra = ["--key", wk + "/honest.key", "--server-key", keys + "/coordinator.pub"]
            statusExtra = workerExtra
            hostileCurve = (try CurveKeyPair(secretKey: CurveKeyPair.readKey(wk + "/hostile.key", what: "key")),
                            try CurveKeyPair.readKey(keys + "/coordinator.pub", what: "key"))
        }
        let coord = try c.startCoordinator(extra: coordExtra)
        let a = try c.startWorker("a", extra: ["--slots", "2"] + workerExtra)
        eventually(15, "a runs jobs") { c.openAttempts().contains { $0.2.hasPrefix("a-") } }
        let honestID = try XCTUnwrap(c.openAttempts().first { $0.2.hasPrefix("a-") }?.2)
        let jobIDs = try c.store().rows("SELECT id FROM jobs ORDER BY seq").map { $0["id"]! }

        let secret = "hostile-secret-" + String(seed, radix: 16)
        let registered = try HostilePeer(endpoint: c.endpoint, curve: hostileCurve)
        try registered.hello(id: "hostile-1", secret: secret)
        _ = try registered.waitFor("WELCOME", 5)
        registered.keepLog = false
        var stranger = try HostilePeer(endpoint: c.endpoint, curve: hostileCurve)
        stranger.keepLog = false
        var gen = FuzzMessages(seed: seed, jobs: jobIDs, honestID: honestID, ownID: "hostile-1", ownSecret: secret)
        var peakFDs = 0, peakRSS = 0
        var honestStopped = false
        var forgedOnOpen = 0
        for sent in 0 ..< messages {
            if sent % 500 == 0 {
                gen.open = c.openAttempts().filter { $0.2 == honestID }.map { ($0.0, $0.1) }
                // Forged reports on attempts open right now (the random ones may come too late).
                for (job, attempt) in gen.open {
                    try registered.done(job, "\(attempt)")
                    try registered.failed(job, "\(attempt)", handback: true)
                    forgedOnOpen += 2
                }
                registered.drain(); stranger.drain()
                peakFDs = max(peakFDs, ProcFacts.openFDs(coord.pid))
                peakRSS = max(peakRSS, ProcFacts.rssKiB(coord.pid))
                XCTAssertTrue(coord.process.isRunning, "coordinator alive after \(sent) messages")
                if !coord.process.isRunning { break }
                // Past halfway (once the honest worker has results): stop it, so the sweep is still
                // running when the flood ends and `status --connect` is asked.
                if !honestStopped && sent >= messages / 2 && c.count("SELECT COUNT(*) FROM results") >= 5 {
                    a.term()
                    honestStopped = true
                }
            }
            if sent % 20_000 == 19_999 {  // new connections too
                stranger = try HostilePeer(endpoint: c.endpoint, curve: hostileCurve)
                stranger.keepLog = false
            }
            let (toRegistered, frames) = gen.next()
            try (toRegistered ? registered : stranger).sendFrames(frames)
        }
        try registered.roundTrip(60)
        try stranger.roundTrip(60)
        if !honestStopped { a.term() }
        XCTAssertEqual(a.wait(10), 143, "128 + SIGTERM; " + a.output.suffix(3000).description)
        peakFDs = max(peakFDs, ProcFacts.openFDs(coord.pid))
        peakRSS = max(peakRSS, ProcFacts.rssKiB(coord.pid))

        // Alive and answering.
        let (rc, out) = try c.statusConnect(extra: statusExtra)
        XCTAssertEqual(rc, 0, out)
        XCTAssertTrue(out.contains("600 jobs"), out)

        // The hostile peer falls silent; an honest worker finishes the sweep.
        let tmp = c.stateDir + "/artifacts/tmp"
        eventually(10, "hostile uploads removed after it fell silent") { ProcFacts.files(tmp).isEmpty }
        try c.startWorker("b", extra: ["--slots", "16"] + workerExtra)
        XCTAssertEqual(coord.wait(60), 0, coord.output.suffix(5000).description)

        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 600)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'done'"), 600, "every job exactly one accepted result")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM (SELECT job FROM events WHERE kind = 'done' GROUP BY job HAVING COUNT(*) > 1)"), 0)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker NOT LIKE 'a-%' AND worker NOT LIKE 'b-%'"), 0, "no result from the hostile peer")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE result LIKE '%forged%'"), 0)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts a JOIN jobs j ON a.job = j.id WHERE a.attempt > j.attempt OR a.attempt < 1"), 0,
                       "every attempt is one the coordinator issued, none claimed")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE outcome = 'lost' AND worker = '\(honestID)'"), 0, "the honest worker lost nothing")

        XCTAssertLessThan(peakFDs, Self.maxFDs)
        XCTAssertLessThan(peakRSS, Self.maxRSSKiB)
        let dbBytes = ProcFacts.size(c.stateDir + "/" + SweepStore.fileName) + ProcFacts.sizeIfPresent(c.stateDir + "/sweep.sqlite-wal")
        XCTAssertLessThan(dbBytes, Self.maxDatabaseBytes)
        let abuseRows = c.count("SELECT COUNT(*) FROM events WHERE kind IN ('dropped', 'refused', 'stale-attempt', 'duplicate-done')")
        let abuseCount = c.count("SELECT COALESCE(SUM(count), 0) FROM events WHERE kind IN ('dropped', 'refused', 'stale-attempt', 'duplicate-done')")
        XCTAssertLessThanOrEqual(abuseRows, Self.maxAbuseEventRows)
        // At most one row per peer, kind and minute, however long the flood took on this machine.
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM (SELECT worker, kind, CAST(time / 60 AS INTEGER) AS minute FROM events WHERE kind IN ('dropped', 'refused', 'stale-attempt', 'duplicate-done') GROUP BY worker, kind, minute HAVING COUNT(*) > 1)"), 0)
        XCTAssertGreaterThan(abuseCount, messages / 2, "most of the flood was refused and counted")
        XCTAssertGreaterThan(forgedOnOpen, 100, "forgeries hit open attempts of the honest worker")
        print("fuzz\(curve ? " (CURVE)" : ""): \(messages) messages; peak fds \(peakFDs), peak RSS \(peakRSS / 1024) MiB, database \(dbBytes / 1024) KiB, "
              + "\(abuseRows) event rows counting \(abuseCount) refused/dropped messages; \(forgedOnOpen) forged reports on open attempts")
    }
}

/// The hostile message generator (seeded: a failure reproduces).
struct FuzzMessages {
    var rng: SplitMix64
    let jobs: [String]
    let honestID: String
    let ownID: String
    let ownSecret: String
    /// The honest worker's open attempts (refreshed by the test).
    var open: [(String, Int)] = []
    let v = Wire.version

    init(seed: UInt64, jobs: [String], honestID: String, ownID: String, ownSecret: String) {
        rng = SplitMix64(seed: seed); self.jobs = jobs; self.honestID = honestID; self.ownID = ownID; self.ownSecret = ownSecret
    }

    mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(max(1, n))) }
    mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }
    mutating func bytes(_ n: Int) -> [UInt8] { (0 ..< n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
    func b(_ s: String) -> [UInt8] { Array(s.utf8) }

    static let numbers = ["0", "-1", "1", "2", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e300", "-1e300",
                          "-0", "3.5", "4294967296", "1e-300", "99999999999999999999"]
    mutating func anyValue() -> String {
        switch int(9) {
        case 0, 1: return pick(Self.numbers)
        case 2: return "\"\(pick(jobs))\""
        case 3: return pick(["true", "false", "null"])
        case 4: return "\"\(String(repeating: "z", count: int(400)))\""
        case 5: return "[\(pick(Self.numbers)),{\"job\":\"\(pick(jobs))\",\"attempt\":\(pick(Self.numbers))}]"
        case 6: return "{\"\(pick(jobs))\":\(pick(Self.numbers))}"
        case 7: return "\"\(String(repeating: "ab", count: 32))\""
        default: return "{}"
        }
    }

    static let fields = ["job", "attempt", "seconds", "artifacts", "reason", "handback", "worker", "secret", "host", "pid", "cores", "slots",
                         "threads", "running", "hash", "offset", "size", "length", "epoch", "epochs", "metrics", "message", "code", "jobs"]

    mutating func header(_ pairs: [(String, String)]) -> [UInt8] {
        b("{" + pairs.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
    }

    mutating func target() -> (String, String) {
        if !open.isEmpty && int(4) > 0 { let o = pick(open); return (o.0, String(o.1)) }
        return (pick(jobs), pick(Self.numbers))
    }

    /// (send from the registered connection?, frames)
    mutating func next() -> (Bool, [[UInt8]]) {
        let registered = int(10) >= 3
        let roll = int(1000)
        switch roll {
        case 0 ..< 200:  // random frames
            return (registered, (0 ..< 1 + int(4)).map { _ in bytes(int(64)) })
        case 200 ..< 500:  // any command, random fields of random types (some missing)
            let cmd = pick(Command.allCases.map(\.rawValue) + ["NOPE", ""])
            var pairs: [(String, String)] = int(10) == 0 ? [("v", pick(Self.numbers))] : [("v", "\(v)")]
            for _ in 0 ..< int(6) { pairs.append((pick(Self.fields), anyValue())) }
            return (registered, [b(cmd), header(pairs)] + (int(2) == 0 ? [bytes(int(100))] : []))
        case 500 ..< 650:  // forged reports for the honest worker's open attempts
            let (job, attempt) = target()
            switch int(4) {
            case 0: return (registered, [b("DONE"), header([("v", "\(v)"), ("job", "\"\(job)\""), ("attempt", attempt), ("seconds", "0.1"), ("artifacts", "{}")]), b("{\"forged\":true}")])
            case 1: return (registered, [b("FAILED"), header([("v", "\(v)"), ("job", "\"\(job)\""), ("attempt", attempt), ("reason", "\"forged\""), ("handback", pick(["true", "false"]))])])
            case 2: return (registered, [b("PROGRESS"), header([("v", "\(v)"), ("job", "\"\(job)\""), ("attempt", attempt), ("epoch", "1"), ("epochs", "9")])])
            default: return (registered, [b("PUT"), header([("v", "\(v)"), ("hash", "\"\(String(format: "%064llx", rng.next()))\""), ("offset", "0"), ("size", "100")]), bytes(10)])
            }
        case 650 ..< 750:  // claims: its own id, other workers' jobs and attempts
            let running = (0 ..< 1 + int(5)).map { _ -> String in let (j, a) = target(); return "{\"job\":\"\(j)\",\"attempt\":\(a)}" }.joined(separator: ",")
            return (true, [b("HELLO"), header([("v", "\(v)"), ("worker", "\"\(ownID)\""), ("secret", "\"\(ownSecret)\""), ("host", "\"h\""), ("pid", "1"),
                                              ("cores", "1"), ("slots", pick(["1", "2", "0", "-1", "100000"])), ("threads", "1"), ("running", "[\(running)]")])])
        case 750 ..< 850:  // huge and negative numbers in otherwise valid headers
            let n = pick(Self.numbers)
            switch int(3) {
            case 0: return (registered, [b("GET"), header([("v", "\(v)"), ("hash", "\"\(String(repeating: "ab", count: 32))\""), ("offset", n), ("length", pick(Self.numbers))])])
            case 1: return (registered, [b("PUT"), header([("v", "\(v)"), ("hash", "\"\(String(repeating: "cd", count: 32))\""), ("offset", n), ("size", pick(Self.numbers))]), bytes(int(64))])
            default: return (registered, [b("FAILED"), header([("v", "\(v)"), ("job", "\"\(pick(jobs))\""), ("attempt", n), ("reason", "\"x\""), ("handback", "true")])])
            }
        case 850 ..< 900:  // id theft
            return (registered, [b("HELLO"), header([("v", "\(v)"), ("worker", "\"\(honestID)\""), ("secret", "\"\(String(rng.next(), radix: 16))\""), ("host", "\"h\""),
                                                    ("pid", "1"), ("cores", "1"), ("slots", "4"), ("threads", "1"), ("running", "[]")])])
        case 900 ..< 990:  // STATUS floods
            return (registered, [b("STATUS"), b("{\"v\":\(v)}")])
        case 990 ..< 992:  // oversized (over the coordinator's limit, under libzmq's)
            return (registered, [b("PUT"), header([("v", "\(v)"), ("hash", "\"\(String(repeating: "ef", count: 32))\""), ("offset", "0"), ("size", "500000")]),
                                 [UInt8](repeating: 0x5A, count: 400_000)])
        case 992 ..< 993:  // leaves (and comes back with the next claim)
            return (true, [b("BYE"), header([("v", "\(v)"), ("code", "\"leaving\""), ("reason", "\"bye\"")])])
        default:  // READY (it may be given jobs: an allowlisted peer may run jobs given to it)
            return (true, [b("READY"), b("{\"v\":\(v)}")])
        }
    }
}
