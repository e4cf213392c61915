import Foundation
import Pipeline
import XCTest
@testable import Sweep

/// Issue 16, preemption-safe jobs: a train job's checkpoints reach the coordinator; a later attempt
/// on another worker resumes from the newest one and ends bit-identical to an undisturbed run.
/// Real coordinator and worker processes on loopback (Harness), a tiny baseline only.
final class CheckpointSweepTests: XCTestCase {
    static func sweep(epochs: Int, checkpointSeconds: Int) -> String {
        """
        synthetic: {count: 40, size: 32, seed: 5}
        image_size: 32
        model: {base_filters: 4, depth: 2, channels: 3}
        baseline: {epochs: \(epochs), batch_size: 4, lr: 0.003, patience: 20, lr_patience: 2, augment: true}
        compression: {svd_ranks: [2], arsvd_taus: []}
        fine_tune: {epochs: 2, lr: 0.0001}
        seeds: [1]
        max_attempts: 3
        checkpoint_seconds: \(checkpointSeconds)

        """
    }

    struct Outcome {
        var model: String
        var metrics: TrainResult
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// The train job's model artifact hash and metrics.
    func trainOutcome(_ c: Cluster) throws -> Outcome {
        let store = try c.store()
        let row = try XCTUnwrap(try store.results().first { $0.job.hasPrefix("train") })
        let metrics = try CheckpointSweepTests.decoder().decode(TrainResult.self, from: Data(row.result.utf8))
        return Outcome(model: try XCTUnwrap(row.artifacts["model.safetensors"]), metrics: metrics)
    }

    func checkpoint(_ c: Cluster) -> CheckpointRow? { (try? c.store().checkpoints())?.first { $0.job.hasPrefix("train") } }

    /// The epoch of the train job's latest PROGRESS (from the store).
    func progressEpoch(_ c: Cluster) -> Int {
        guard let row = try? c.store().jobs().first(where: { $0.id.hasPrefix("train") }), let p = row.progress,
              let o = try? JSONSerialization.jsonObject(with: Data(p.utf8)) as? [String: Any] else { return 0 }
        return (o["epoch"] as? Int) ?? 0
    }

    func assertSameOutcome(_ a: Outcome, _ b: Outcome, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.model, b.model, "the model file is bit-identical", file: file, line: line)
        XCTAssertEqual(a.metrics.test, b.metrics.test, file: file, line: line)
        XCTAssertEqual(a.metrics.testWithBatchStatistics, b.metrics.testWithBatchStatistics, file: file, line: line)
        XCTAssertEqual(a.metrics.epochsRun, b.metrics.epochsRun, file: file, line: line)
        XCTAssertEqual(a.metrics.bestEpoch, b.metrics.bestEpoch, file: file, line: line)
        XCTAssertEqual(a.metrics.stoppedBy, b.metrics.stoppedBy, file: file, line: line)
    }

    /// The epochs worker `name` reported for the train job, in order (coordinator log, plain progress).
    func epochsReported(_ coordinatorLog: String, worker name: String) -> [Int] {
        coordinatorLog.split(separator: "\n").compactMap { line -> Int? in
            guard line.contains("train"), line.contains(" on \(name)-"), let r = line.range(of: ": epoch ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    func undisturbed(epochs: Int) throws -> Outcome {
        let c = Cluster("ckpt-twin", sweep: CheckpointSweepTests.sweep(epochs: epochs, checkpointSeconds: 0))
        let coord = try c.startCoordinator()
        try c.startWorker("t")
        XCTAssertEqual(coord.wait(300), 0, coord.output)
        XCTAssertEqual(try c.store().checkpoints(), [], "a finished job's checkpoint is dropped")
        return try trainOutcome(c)
    }

    /// SIGKILL the worker after epoch k (its checkpoint recorded); another worker's attempt starts
    /// at epoch k + 1 (it logs that it resumed) and the final model and metrics equal an
    /// undisturbed run's.
    func testKilledWorkersJobResumesOnAnotherWorkerBitIdentical() throws {
        let epochs = 8
        let twin = try undisturbed(epochs: epochs)
        let c = Cluster("ckpt-kill", sweep: CheckpointSweepTests.sweep(epochs: epochs, checkpointSeconds: 0))
        let coord = try c.startCoordinator()
        let a = try c.startWorker("a")
        eventually(120, "a checkpoint of the train job recorded") { (checkpoint(c)?.epoch ?? 0) >= 2 }
        a.kill9()
        // Whatever a sent before it died has been handled once it is declared dead.
        eventually(30, "a declared dead") { coord.output.contains("declared dead") }
        let k = try XCTUnwrap(checkpoint(c)).epoch
        XCTAssertLessThan(k, epochs, "killed before training ended")
        let stored = try XCTUnwrap(checkpoint(c))
        XCTAssertTrue(FileManager.default.fileExists(atPath: c.stateDir + "/artifacts/" + stored.hash))
        // A coordinator restart on top: the checkpoint reference survives in SQLite.
        coord.kill9()
        let coord2 = try c.startCoordinator(extra: ["--log-level", "debug"], tag: "-2")  // every epoch logged
        let b = try c.startWorker("b")
        XCTAssertEqual(coord2.wait(300), 0, coord2.output)
        XCTAssertTrue(b.output.contains("resumed from epoch \(k)"), b.output)
        XCTAssertEqual(epochsReported(coord2.output, worker: "b").first, k + 1, coord2.output)
        assertSameOutcome(try trainOutcome(c), twin)
        // The job finished: its checkpoint row and file are gone.
        XCTAssertEqual(try c.store().checkpoints(), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: c.stateDir + "/artifacts/" + stored.hash))
    }

    /// SIGTERM (a Slurm preemption): uploads are throttled to one per `checkpoint_seconds` while
    /// the job runs, and the newest checkpoint is uploaded at the stop all the same; the attempt is a
    /// handback (not a failure) and the next attempt resumes from that checkpoint.
    func testSigtermHandsBackWithTheNewestCheckpoint() throws {
        let epochs = 8
        let c = Cluster("ckpt-term", sweep: CheckpointSweepTests.sweep(epochs: epochs, checkpointSeconds: 3600))
        let coord = try c.startCoordinator(extra: ["--log-level", "debug"])  // every epoch logged
        let a = try c.startWorker("a")
        eventually(120, "epoch 3 of the train job reported") { progressEpoch(c) >= 3 }
        XCTAssertEqual(checkpoint(c)?.epoch, 1, "one upload per hour: only the first epoch's checkpoint so far")
        a.term()
        XCTAssertNotNil(a.wait(60), "the worker left after its handback: \(a.output)")
        eventually(10, "the attempt recorded as handed back") {
            ((try? c.store().attempts())?.filter { $0.job.hasPrefix("train") }.map(\.outcome) ?? []) == [.handback]
        }
        let k = try XCTUnwrap(checkpoint(c)).epoch
        // Epoch 3 reported means epoch 2's checkpoint was written before it began (epoch 3's may
        // still be on its way when the signal lands): anything past the throttled epoch 1 came at SIGTERM.
        XCTAssertGreaterThanOrEqual(k, 2, "the newest checkpoint was uploaded at SIGTERM")
        XCTAssertLessThan(k, epochs)
        let attempts = try c.store().attempts().filter { $0.job.hasPrefix("train") }
        XCTAssertEqual(attempts.map(\.outcome), [.handback], "\(attempts)")
        XCTAssertEqual(try c.store().jobs().first { $0.id.hasPrefix("train") }?.failures, 0)
        let b = try c.startWorker("b")
        XCTAssertEqual(coord.wait(300), 0, coord.output)
        XCTAssertTrue(b.output.contains("resumed from epoch \(k)"), b.output)
        XCTAssertEqual(epochsReported(coord.output, worker: "b").first, k + 1, coord.output)
    }

    /// CHECKPOINT is accepted only from the worker running the job's current attempt, for an
    /// artifact it uploaded; anything else is refused before it touches the job. A checkpoint that
    /// is not one (a peer's junk) makes the next attempt start over, not fail.
    func testCheckpointFromANonOwningAttemptIsRefused() throws {
        let c = Cluster("ckpt-hostile", sweep: CheckpointSweepTests.sweep(epochs: 2, checkpointSeconds: 0))
        // Dead after 10 s of silence: the peers here heartbeat only while they wait for something.
        let coord = try c.startCoordinator(extra: ["--liveness", "100"])
        let v = Wire.version
        let owner = try HostilePeer(endpoint: c.endpoint)
        try owner.hello(id: "owner-1", secret: HostilePeerTests.secret())
        _ = try owner.waitFor("WELCOME", 5)
        try owner.send("READY", "{\"v\":\(v)}")
        let job = try owner.waitFor("JOB", 10)
        let name = try XCTUnwrap(job["job"] as? String)
        XCTAssertTrue(name.hasPrefix("train"), "\(job)")
        XCTAssertEqual(job["checkpointSeconds"] as? Double, 0, "JOB carries checkpoint_seconds: \(job)")
        let bytes = Array("not really a checkpoint".utf8)
        let hash = SHA256Hasher.hex(bytes)
        func sendCheckpoint(_ peer: HostilePeer, attempt: Int, epoch: Int, hash: String, size: Int) throws {
            try peer.send("CHECKPOINT", "{\"v\":\(v),\"job\":\"\(name)\",\"attempt\":\(attempt),\"epoch\":\(epoch),\"hash\":\"\(hash)\",\"size\":\(size)}")
        }
        // The owner names an artifact it never uploaded.
        try sendCheckpoint(owner, attempt: 1, epoch: 1, hash: hash, size: bytes.count)
        // Another registered peer: no attempt of its own, so neither its upload nor its CHECKPOINT counts.
        let thief = try HostilePeer(endpoint: c.endpoint)
        try thief.hello(id: "thief-1", secret: HostilePeerTests.secret())
        _ = try thief.waitFor("WELCOME", 5)
        try thief.put(hash: hash, offset: 0, size: Int64(bytes.count), bytes: bytes)
        try sendCheckpoint(thief, attempt: 1, epoch: 1, hash: hash, size: bytes.count)
        try thief.roundTrip()
        try owner.roundTrip()
        XCTAssertEqual(checkpoint(c), nil, "nothing recorded")
        // The owner uploads; a CHECKPOINT for an attempt that is not its current one is refused,
        // one with an impossible epoch is dropped, and only its own is recorded.
        try owner.put(hash: hash, offset: 0, size: Int64(bytes.count), bytes: bytes)
        _ = try owner.waitFor("PUTACK", 5)
        try sendCheckpoint(owner, attempt: 2, epoch: 1, hash: hash, size: bytes.count)
        try sendCheckpoint(owner, attempt: 1, epoch: 0, hash: hash, size: bytes.count)
        try sendCheckpoint(thief, attempt: 1, epoch: 1, hash: hash, size: bytes.count)
        try thief.roundTrip()
        try owner.roundTrip()
        XCTAssertEqual(checkpoint(c), nil, "still nothing recorded")
        try sendCheckpoint(owner, attempt: 1, epoch: 1, hash: hash, size: bytes.count)
        try owner.roundTrip()
        eventually(5, "the owner's checkpoint recorded") { checkpoint(c)?.hash == hash }
        XCTAssertEqual(c.count("SELECT COALESCE(SUM(count), 0) FROM events WHERE kind = 'refused' AND worker = 'thief-1'"), 3)
        XCTAssertEqual(c.count("SELECT COALESCE(SUM(count), 0) FROM events WHERE kind = 'refused' AND worker = 'owner-1'"), 2)
        XCTAssertEqual(c.count("SELECT COALESCE(SUM(count), 0) FROM events WHERE kind = 'dropped' AND worker = 'owner-1'"), 1)
        // The owner hands the job back; an honest worker gets the junk as its checkpoint and starts over.
        try owner.send("BYE", "{\"v\":\(v),\"code\":\"leaving\",\"reason\":\"done here\"}")
        let w = try c.startWorker("w")
        XCTAssertEqual(coord.wait(300), 0, coord.output)
        XCTAssertTrue(w.output.contains("checkpoint is unusable"), w.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM results"), 2)
    }
}
