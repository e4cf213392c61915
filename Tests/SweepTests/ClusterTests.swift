import Foundation
import XCTest
@testable import Sweep

/// Real coordinator and worker processes on 127.0.0.1.
final class ClusterTests: XCTestCase {
    func testNoopAndSleepSweepCompletesWithStatus() throws {
        let c = Cluster("basic", sweep: "noop: 300\nsleep: {count: 3, seconds: 0.2}\n")
        let coord = try c.startCoordinator()
        try c.startWorker("a", extra: ["--slots", "2"])
        try c.startWorker("b")
        XCTAssertEqual(coord.wait(30), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 303)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'done'"), 303)
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT worker) FROM results"), 2, "both workers took jobs")
        for w in c.workers { XCTAssertEqual(w.wait(5), 0, "worker exits after BYE: \(w.output)") }
        let status = try Proc(["status", "--state-dir", c.stateDir], log: c.dir + "/status.log")
        XCTAssertEqual(status.wait(10), 0)
        XCTAssertTrue(status.output.contains("303 jobs — 303 done"), status.output)
        XCTAssertTrue(status.output.contains("complete"), status.output)
    }

    func testKillWorkerMidJobFinishesElsewhereWithAttempt2() throws {
        let c = Cluster("killworker", sweep: "sleep: {count: 1, seconds: 1.5}\n")
        let coord = try c.startCoordinator()
        let a = try c.startWorker("a")
        eventually(10, "job running on a") { c.count("SELECT COUNT(*) FROM attempts WHERE worker LIKE 'a-%' AND outcome IS NULL") == 1 }
        a.kill9()
        try c.startWorker("b")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        let r = try c.store().rows("SELECT attempt, worker FROM results")
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(r.first?["attempt"], "2")
        XCTAssertTrue(r.first?["worker"]?.hasPrefix("b-") ?? false)
        XCTAssertEqual(try c.store().rows("SELECT outcome FROM attempts WHERE attempt = 1").first?["outcome"], "dead")
    }

    func testKillCoordinatorMidSweepAndResume() throws {
        let c = Cluster("killcoord", sweep: "noop: 2000\nsleep: {count: 8, seconds: 0.4}\nmax_attempts: 3\n")
        let coord = try c.startCoordinator()
        try c.startWorker("a", extra: ["--slots", "2"])
        try c.startWorker("b", extra: ["--slots", "2"])
        eventually(20, "some sleep results") { c.count("SELECT COUNT(*) FROM results WHERE job LIKE 'sleep-%'") >= 2 }
        coord.kill9()
        let before = try c.store().rows("SELECT job, attempt, worker, finished FROM results ORDER BY job")
        XCTAssertLessThan(before.count, 2008, "killed mid-sweep")
        usleep(300_000)
        let coord2 = try c.startCoordinator(tag: "-2")
        XCTAssertEqual(coord2.wait(40), 0, coord2.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 2008)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'done'"), 2008, "every job exactly one accepted result")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM (SELECT job FROM events WHERE kind = 'done' GROUP BY job HAVING COUNT(*) > 1)"), 0)
        let after = Dictionary(uniqueKeysWithValues: try c.store().rows("SELECT job, attempt, worker, finished FROM results").map { ($0["job"]!, $0) })
        for r in before { XCTAssertEqual(after[r["job"]!], r, "finished result kept unchanged: \(r["job"]!)") }
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts a JOIN results r ON a.job = r.job WHERE a.started > r.finished"), 0,
                       "nothing finished was dispatched again")
        XCTAssertTrue(coord2.output.contains("resuming"), coord2.output)
        for w in c.workers { XCTAssertEqual(w.wait(5), 0, "workers reattached and finished: \(w.output.suffix(2000))") }
    }

    func testRogueClientIsLoggedAndDropped() throws {
        let c = Cluster("rogue", sweep: "noop: 50\n")
        let coord = try c.startCoordinator()
        let ctx = try ZMQContext()
        let rogue = try ZMQSocket(ctx, .dealer, maxMessageSize: -1)
        try rogue.connect(c.endpoint)
        let garbage: [[[UInt8]]] = [
            [Array("garbage".utf8)],
            [Array("HELLO".utf8), Array("not json".utf8)],
            [Array("NOPE".utf8), Array("{\"v\":1}".utf8)],
            [Array("HELLO".utf8), Array("{\"v\":1}".utf8)],
            [Array("READY".utf8), Array("{\"v\":7}".utf8)],
            [Array("PUT".utf8), Array("{\"v\":1}".utf8), [UInt8](repeating: 7, count: 1 << 20)],
            [[0, 255, 1], [2, 3]],
        ]
        for m in garbage { try rogue.send(m) }
        try rogue.send([Array("DONE".utf8), Array("{\"v\":\(Wire.version),\"job\":\"noop-01\",\"attempt\":1,\"seconds\":0,\"artifacts\":{}}".utf8), Array("{}".utf8)])
        // Unknown to the coordinator: told to say HELLO, and its DONE is not a result.
        let reply = try ZMQPoll.readable([rogue], timeoutMs: 3000)
        XCTAssertTrue(reply[0])
        XCTAssertEqual(try rogue.receive().map { String(decoding: $0[0], as: UTF8.self) }, "BYE")
        // Over libzmq's hard limit: the connection is dropped by libzmq.
        try rogue.send([Array("PUT".utf8), [UInt8](repeating: 1, count: 5 << 20)])
        usleep(300_000)
        try c.startWorker("a")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 50)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker LIKE 'a-%'"), 50)
        let log = coord.output
        XCTAssertTrue(log.contains("unknown command"), log)
        XCTAssertTrue(log.contains("header is not a JSON object"), log)
        XCTAssertTrue(log.contains("oversized"), log)
        XCTAssertTrue(log.contains("protocol version 7"), log)
        XCTAssertGreaterThanOrEqual(c.count("SELECT SUM(count) FROM events WHERE kind = 'dropped'"), 5, "counted in aggregated rows")
    }

    func testCurveUnknownKeyRefusedKnownKeyWorks() throws {
        let c = Cluster("curve", sweep: "noop: 20\n")
        let keys = c.dir + "/keys", wk = c.dir + "/wkeys"
        for (dir, name) in [(keys, "coordinator"), (wk, "good"), (wk, "rogue")] {
            XCTAssertEqual(try Proc(["keygen", "--out", dir, "--name", name], log: c.dir + "/keygen.log").wait(10), 0)
        }
        let attrs = try FileManager.default.attributesOfItem(atPath: wk + "/good.key")
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        try FileManager.default.createDirectory(atPath: keys + "/workers", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: wk + "/good.pub", toPath: keys + "/workers/good.pub")
        let coord = try c.startCoordinator(extra: ["--keys", keys])
        XCTAssertTrue(coord.output.contains("CURVE"), coord.output)
        let rogue = try c.startWorker("rogue", extra: ["--key", wk + "/rogue.key", "--server-key", keys + "/coordinator.pub"])
        eventually(5, "refusal logged") { coord.output.contains("refused worker key") }
        let roguePub = try CurveKeyPair.readKey(wk + "/rogue.pub", what: "key")
        XCTAssertTrue(coord.output.contains(roguePub), "the refused key is named in the log")
        try c.startWorker("good", extra: ["--key", wk + "/good.key", "--server-key", keys + "/coordinator.pub"])
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results WHERE worker LIKE 'good-%'"), 20)
        // Checked once the whole sweep ran with the rogue worker trying all along (not after a
        // pause in which nothing may have had time to happen).
        XCTAssertGreaterThan(c.count("SELECT COUNT(*) FROM workers WHERE id LIKE 'good-%'"), 0)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM workers WHERE id NOT LIKE 'good-%'"), 0, "a refused key never becomes a worker")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE worker NOT LIKE 'good-%'"), 0, "and gets no job")
        rogue.kill9()
        // No keys off loopback: refused up front.
        let bad = try Proc(["coordinator", "--sweep", c.dir + "/sweep.yaml", "--bind", "tcp://0.0.0.0:\(c.port)", "--state-dir", c.dir + "/s2"],
                           log: c.dir + "/bad.log")
        XCTAssertEqual(bad.wait(10), 1)
        XCTAssertTrue(bad.output.contains("not a loopback address"), bad.output)
    }

    func testSilentWorkersDeclaredDeadThenMaxAttemptsFailsWithEveryReason() throws {
        let c = Cluster("maxattempts", sweep: "sleep: {count: 1, seconds: 1}\nmax_attempts: 2\n")
        let coord = try c.startCoordinator()
        try c.startWorker("a", extra: ["--fault", "freeze-on-job=30"])
        eventually(10, "attempt 1 dead") { c.count("SELECT COUNT(*) FROM attempts WHERE outcome = 'dead'") == 1 }
        try c.startWorker("b", extra: ["--fault", "freeze-on-job=30"])
        XCTAssertEqual(coord.wait(20), 2, "exit status 2: a job failed\n" + coord.output)
        let job = try c.store().rows("SELECT state, reason FROM jobs").first!
        XCTAssertEqual(job["state"], "failed")
        let reason = job["reason"] ?? ""
        XCTAssertTrue(reason.contains("attempt 1 on a-") && reason.contains("attempt 2 on b-"), reason)
        XCTAssertTrue(reason.contains("silent"), reason)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 0)
    }

    func testLateDoneFromDeadWorkerAndDuplicateDoneAreDropped() throws {
        let c = Cluster("late", sweep: "sleep: {count: 1, seconds: 0.3}\n")
        let coord = try c.startCoordinator()
        // Frozen three times as long as the coordinator waits before declaring it dead.
        let a = try c.startWorker("a", extra: ["--fault", "freeze-on-job=\(3 * Harness.deadAfterSeconds)"])
        eventually(10, "attempt 1 dead") { c.count("SELECT COUNT(*) FROM attempts WHERE outcome = 'dead'") == 1 }
        try c.startWorker("b")
        XCTAssertEqual(coord.wait(20), 0, coord.output)
        XCTAssertEqual(try c.store().rows("SELECT attempt FROM results").first?["attempt"], "2")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM events WHERE kind = 'done'"), 1)
        a.wait(5)

        let d = Cluster("dup", sweep: "noop: 30\n")
        let coord2 = try d.startCoordinator()
        try d.startWorker("dup", extra: ["--fault", "duplicate-done"])
        XCTAssertEqual(coord2.wait(20), 0, coord2.output)
        XCTAssertEqual(d.count("SELECT COUNT(*) FROM results"), 30)
        XCTAssertEqual(d.count("SELECT COUNT(*) FROM events WHERE kind = 'done'"), 30)
        XCTAssertGreaterThan(d.count("SELECT COUNT(*) FROM events WHERE kind = 'duplicate-done'"), 0)
        XCTAssertTrue(coord2.output.contains("late or duplicate DONE"), coord2.output)
    }

    func testFailAndCrashJobsComeBackFailedAndWorkerCarriesOn() throws {
        let sweep = """
            max_attempts: 1
            sleep: {count: 2, seconds: 0.2, in_child: true}
            jobs:
              - {kind: fail, count: 1, spec: {message: "bad data in image 7"}}
              - {kind: crash, count: 1}
            """
        let c = Cluster("failcrash", sweep: sweep)
        let coord = try c.startCoordinator()
        let w = try c.startWorker("a")
        XCTAssertEqual(coord.wait(30), 2, coord.output)
        let jobs = Dictionary(uniqueKeysWithValues: try c.store().rows("SELECT id, state, reason FROM jobs").map { ($0["id"]!, $0) })
        XCTAssertEqual(jobs["fail-1"]?["state"], "failed")
        XCTAssertTrue(jobs["fail-1"]?["reason"]?.contains("bad data in image 7") ?? false, "\(jobs)")
        XCTAssertEqual(jobs["crash-1"]?["state"], "failed")
        XCTAssertTrue(jobs["crash-1"]?["reason"]?.contains("signal 6") ?? false, "\(jobs)")
        XCTAssertTrue(jobs["crash-1"]?["reason"]?.contains("crashing on purpose") ?? false, "last stderr line: \(jobs)")
        XCTAssertEqual(jobs["sleep-1"]?["state"], "done")
        XCTAssertEqual(jobs["sleep-2"]?["state"], "done")
        XCTAssertEqual(c.count("SELECT COUNT(DISTINCT worker) FROM attempts"), 1, "one worker survived everything")
        XCTAssertEqual(w.wait(5), 0)
    }

    func testDatasetAndOutputArtifactsTravelVerified() throws {
        let c = Cluster("artifacts", sweep: "")
        let data = c.dir + "/data"
        var rng = SystemRandomNumberGenerator()
        for i in 0 ..< 5 {
            let bytes = (0 ..< 150_000).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            FileManager.default.createFile(atPath: data + "/images/img\(i).bin", contents: nil)
            try? FileManager.default.createDirectory(atPath: data + "/images", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: data + "/images/img\(i).bin", contents: Data(bytes))
        }
        Harness.write("mask", data + "/masks/m0.txt")
        Harness.write("data_root: \(data)\nbaseline_model: \(data)/masks/m0.txt\ncompression: {svd_ranks: [], arsvd_taus: []}\n" +
                      "sleep: {count: 2, seconds: 0.1, in_child: true, produce_bytes: 600000, with_dataset: true}\n", c.dir + "/sweep.yaml")
        let coord = try c.startCoordinator()
        try c.startWorker("a")
        XCTAssertEqual(coord.wait(30), 0, coord.output)
        let results = try c.store().rows("SELECT job, result, artifacts FROM results ORDER BY job")
        XCTAssertEqual(results.count, 2)
        for r in results {
            let obj = try JSONSerialization.jsonObject(with: Data(r["result"]!.utf8)) as! [String: Any]
            XCTAssertEqual((obj["inputs"] as? [String: Any])?["dataset"] as? Double, 6, "all dataset files unpacked: \(obj)")
            let arts = try JSONSerialization.jsonObject(with: Data(r["artifacts"]!.utf8)) as! [String: String]
            let hash = try XCTUnwrap(arts["out.bin"])
            XCTAssertEqual(hash, obj["produced"] as? String)
            let stored = try SHA256Hasher.file(c.stateDir + "/artifacts/" + hash)
            XCTAssertEqual(stored.hash, hash)
            XCTAssertEqual(stored.size, 600_000)
        }
        XCTAssertTrue(try String(contentsOfFile: c.dir + "/worker-a.log", encoding: .utf8).contains("verified and cached"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: c.dir + "/cache-a/unpacked").filter { !$0.hasPrefix(".") }.count, 1,
                       "dataset unpacked once, reused by the second job")
    }

    func testWorkerSIGTERMHandsJobBack() throws {
        let c = Cluster("sigterm", sweep: "sleep: {count: 1, seconds: 1.0}\nmax_attempts: 1\n")
        let coord = try c.startCoordinator()
        let a = try c.startWorker("a")
        eventually(10, "job running on a") { c.count("SELECT COUNT(*) FROM attempts WHERE outcome IS NULL") == 1 }
        a.term()
        XCTAssertEqual(a.wait(5), 143, "128 + SIGTERM, after handing back\n" + a.output)
        try c.startWorker("b")
        XCTAssertEqual(coord.wait(20), 0, "handback does not use up max_attempts=1\n" + coord.output)
        XCTAssertEqual(try c.store().rows("SELECT outcome, reason FROM attempts WHERE attempt = 1").first?["reason"], "worker stopping")
    }
}

extension ClusterTests {
    /// A job whose input cannot be read fails at once, not after `max_attempts` tries (it would
    /// fail the same way on any worker), and its reason names the model as the user knows it, not
    /// the worker's cached copy. A job that merely fails is still retried.
    func testInputErrorsFailAtOnceNamingTheUsersFile() throws {
        let compressSpec = """
            {job: "svd-r2-s1", baselineJob: "train-s9", method: svd, rank: 2, fineTune: {epochs: 0, learningRate: 0.0001}, seed: 1,
             imageSize: 32, model: {baseFilters: 4, depth: 2, channels: 3}, data: {synthetic: {count: 12, size: 32, seed: 1}},
             batchSize: 4, validationSplit: 0.1}
            """
        let sweep = """
            max_attempts: 3
            jobs:
              - {kind: compress, count: 1, spec: \(compressSpec)}
              - {kind: fail, count: 1, spec: {message: "flaky"}}
            """
        let c = Cluster("inputerror", sweep: sweep)
        let coord = try c.startCoordinator()
        try c.startWorker("a")
        XCTAssertEqual(coord.wait(60), 2, coord.output)
        let jobs = Dictionary(uniqueKeysWithValues: try c.store().rows("SELECT id, state, reason FROM jobs").map { ($0["id"]!, $0) })
        let input = try XCTUnwrap(jobs.keys.first { $0.hasPrefix("compress") })
        XCTAssertEqual(jobs[input]?["state"], "failed")
        let reason = jobs[input]?["reason"] ?? ""
        XCTAssertTrue(reason.hasPrefix("input error, not retried: the model of job train-s9"), reason)
        XCTAssertFalse(reason.contains("/inputs/"), "no worker cache path: \(reason)")
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE job = '\(input)'"), 1, "not retried")
        let flaky = try XCTUnwrap(jobs.keys.first { $0.hasPrefix("fail") })
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM attempts WHERE job = '\(flaky)'"), 3, "an ordinary failure is retried")
    }
}
