import Basics
import Foundation

/// The newest checkpoint of each train/fine-tune job, mirrored from the store's `checkpoints`
/// table, and the upload interval workers are told (`checkpoint_seconds`).
struct CheckpointBook {
    var newest: [String: CheckpointRow] = [:]
    /// `checkpoint_seconds` of the sweep (kept in the store's meta, like `job_timeout`).
    var seconds = SweepSpec().checkpointSeconds
    /// Job kinds that write checkpoints (the pipeline's; test kinds do not).
    static let kinds: Set<String> = ["train", "compress"]
}

extension Coordinator {
    /// The input name a resuming attempt finds its checkpoint under (`inputs/checkpoint`).
    public static let checkpointInput = "checkpoint"

    /// Loads every job's newest checkpoint and `checkpoint_seconds` (the sweep file's value when
    /// given, else the one kept from an earlier run). A row whose artifact is gone is dropped.
    func loadCheckpoints() throws {
        let stored = try store.meta("checkpoint_seconds").flatMap(Double.init)
        if let sweep = options.sweep {
            checkpointBook.seconds = sweep.checkpointSeconds
            if stored != sweep.checkpointSeconds { try store.setMeta("checkpoint_seconds", String(sweep.checkpointSeconds)) }
        } else if let stored {
            checkpointBook.seconds = stored
        }
        for row in try store.checkpoints() {
            guard let e = jobs[row.job], !e.terminal, artifacts.size(row.hash) == row.size else {
                ops.append(.checkpoint(.drop(job: row.job)))
                continue
            }
            checkpointBook.newest[row.job] = row
        }
        if !checkpointBook.newest.isEmpty { Log.info("\(checkpointBook.newest.count) job(s) will resume from a checkpoint") }
        try commit()
    }

    /// The `checkpoint` input of a job's next attempt, when it has one.
    func checkpointInputs(_ e: JobRecord) -> [InputRef] {
        guard let c = checkpointBook.newest[e.planned.id] else { return [] }
        return [InputRef(name: Coordinator.checkpointInput, hash: c.hash, size: c.size, unpack: false)]
    }

    /// What JOB says about checkpoints: the upload interval, for the kinds that write them.
    func checkpointSeconds(kind: String) -> Double? {
        CheckpointBook.kinds.contains(kind) ? checkpointBook.seconds : nil
    }

    /// CHECKPOINT: accepted only from the worker running the job's current attempt, for an
    /// artifact it uploaded (stored, of the size announced), newer than the job's checkpoint.
    /// Anything else is refused before it touches the job. The superseded checkpoint's file goes.
    func checkpoint(_ msg: WireMessage, _ w: WorkerRecord, now: Double) throws {
        let h = try msg.decode(CheckpointHeader.self)
        try Coordinator.checkRef(h.job, h.attempt, "CHECKPOINT")
        guard h.epoch >= 1, h.epoch <= Wire.maxEpoch, SHA256Hasher.isValidHex(h.hash), h.size >= 0, h.size <= Wire.maxArtifactBytes else {
            throw SweepError.protocolViolation("CHECKPOINT with a bad epoch, hash or size")
        }
        let ref = JobRef(job: h.job, attempt: h.attempt)
        guard w.running.contains(ref), jobs.isCurrentAttempt(ref, on: w.id), let e = jobs[h.job], CheckpointBook.kinds.contains(e.kind) else {
            return refuse(w, "CHECKPOINT \(h.job) attempt \(h.attempt) from \(w.id): not the job's current attempt on this worker",
                          job: h.job, attempt: h.attempt)
        }
        guard artifacts.size(h.hash) == h.size else {
            return refuse(w, "CHECKPOINT \(h.job) attempt \(h.attempt) from \(w.id): artifact \(h.hash.prefix(12)) of \(h.size) bytes was never uploaded",
                          job: h.job, attempt: h.attempt)
        }
        let old = checkpointBook.newest[h.job]
        if let old, old.epoch >= h.epoch { return }  // an older or repeated one (a resend after reconnecting)
        let row = CheckpointRow(job: h.job, attempt: h.attempt, epoch: h.epoch, hash: h.hash, size: h.size, worker: w.id, recorded: wallClockSeconds())
        checkpointBook.newest[h.job] = row
        ops.append(.checkpoint(.record(row)))
        if let old, old.hash != h.hash { removeCheckpointFile(old.hash) }
        progressView.jobEvent("\(h.job) attempt \(h.attempt) on \(w.id): checkpoint after epoch \(h.epoch) stored",
                              kind: e.kind, total: jobs.count)
    }

    /// A job finished: its checkpoint is of no more use.
    func dropCheckpoint(job: String) {
        guard let old = checkpointBook.newest.removeValue(forKey: job) else { return }
        ops.append(.checkpoint(.drop(job: job)))
        removeCheckpointFile(old.hash)
    }

    /// Removes a superseded checkpoint's file, unless something else stores the same bytes (a job
    /// input, a result's output, another job's checkpoint): a peer cannot name those to have them deleted.
    func removeCheckpointFile(_ hash: String) {
        if checkpointBook.newest.values.contains(where: { $0.hash == hash }) { return }
        if producedArtifacts.values.contains(where: { $0.values.contains(hash) }) { return }
        if jobs.all.contains(where: { $0.planned.inputs.contains { $0.hash == hash } }) { return }
        if unlink(artifacts.path(hash)) == 0 { ops.append(.checkpoint(.forgetArtifact(hash: hash))) }
    }
}
