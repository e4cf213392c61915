import Basics
import Foundation

/// A job this worker holds: fetching its inputs, running, or uploading its outputs.
final class ActiveJob {
    let header: JobHeader
    let spec: [UInt8]
    let control = JobControl()
    var missing: Set<String> = []
    var started = false
    /// Set when the job finished and its outputs are being uploaded.
    var result: (result: [UInt8], outputs: [JobOutput], seconds: Double)?
    var uploadsLeft: Set<String> = []
    /// Checkpoints (Worker-checkpoints.swift): the newest the child wrote, the one being uploaded,
    /// the newest the coordinator has, and when the last upload started.
    var newestCheckpoint: ChildCheckpoint?
    var uploadingCheckpoint: ChildCheckpoint?
    var sentCheckpointEpoch = 0
    var lastCheckpointUpload = -Double.infinity
    init(header: JobHeader, spec: [UInt8]) { self.header = header; self.spec = spec }
}

/// A DONE or FAILED sent but not yet acknowledged: resent after a reconnect (with re-upload of
/// its outputs, which costs nothing when the coordinator already has them).
struct PendingResult {
    var message: WireMessage
    var outputs: [JobOutput]
}

extension Worker {
    func receiveJob(_ msg: WireMessage) throws {
        let h = try msg.fields.decodeJob()
        let ref = JobRef(job: h.job, attempt: h.attempt)
        if active[ref] != nil || pending[ref] != nil { return }  // repeated: already ours
        let job = ActiveJob(header: h, spec: msg.payload.first ?? Array("{}".utf8))
        active[ref] = job
        if h.kind == "noop" {
            // Nothing to run: answer at once on this thread (the benchmark's fast path).
            finish(ref, job, result: Array("{}".utf8), outputs: [], seconds: 0)
            return
        }
        for input in h.inputs where !artifacts.has(input.hash) {
            guard SHA256Hasher.isValidHex(input.hash) else { throw SweepError.protocolViolation("JOB \(h.job): bad input hash") }
            job.missing.insert(input.hash)
            startFetch(input.hash, size: input.size)
        }
        if job.missing.isEmpty { startJob(ref, job) }
    }

    func startJob(_ ref: JobRef, _ job: ActiveJob) {
        job.started = true
        var inChild = job.header.kind != "sleep"
        if !inChild, let spec = try? JSONDecoder().decode(SleepSpec.self, from: Data(job.spec)) { inChild = spec.inChild }
        Log.info("running \(ref.job) attempt \(ref.attempt) (\(job.header.kind)\(inChild ? ", child process" : ""))")
        JobRunner.start(JobRunner.Setup(ref: ref, kind: job.header.kind, spec: job.spec, inputs: job.header.inputs,
                                        cacheDir: options.cacheDir, executable: options.executable,
                                        threads: options.threads, inChild: inChild, checkpoints: job.header.checkpointSeconds != nil),
                         context: context, control: job.control)
        if options.faults.crashMidJob {
            Thread.detachNewThread { usleep(300_000); Log.warn("fault crash-mid-job: exiting abruptly"); _exit(137) }
        }
        if let s = options.faults.freezeOnJob, finishedJobs == 0 {
            Log.warn("fault freeze-on-job: socket loop frozen for \(s)s")
            usleep(UInt32(s * 1e6))
        }
    }

    /// `[event, job, attempt, payload...]` from a job thread.
    func handleJobEvent(_ f: [[UInt8]]) {
        guard f.count >= 3, let attempt = Int(String(decoding: f[2], as: UTF8.self)) else { return }
        let ref = JobRef(job: String(decoding: f[1], as: UTF8.self), attempt: attempt)
        guard let job = active[ref] else { return }  // cancelled meanwhile
        switch String(decoding: f[0], as: UTF8.self) {
        case "progress" where f.count >= 4:
            guard var p = try? JSONDecoder().decode(ChildProgress.self, from: Data(f[3])) else { return }
            if let c = p.checkpoint { return checkpointWritten(ref, job, c) }
            if let m = p.message, m.hasPrefix("resumed from epoch") || m.contains("checkpoint") { Log.info("\(ref.job) attempt \(ref.attempt): \(m)") }
            guard welcomed else { return }
            p.metrics = p.metrics?.filter { $0.value.isFinite }
            send(WireMessage(.progress, ProgressHeader(job: ref.job, attempt: ref.attempt, epoch: p.epoch, epochs: p.epochs,
                                                       metrics: p.metrics, message: p.message.map { String($0.prefix(300)) })))
        case "done" where f.count >= 6:
            let outputs = (try? JSONDecoder().decode([JobOutput].self, from: Data(f[4]))) ?? []
            finish(ref, job, result: f[3], outputs: outputs, seconds: Double(String(decoding: f[5], as: UTF8.self)) ?? 0)
        case "failed" where f.count >= 4:
            let reason = String(decoding: f[3], as: UTF8.self)
            let permanent = f.count >= 5 && f[4] == Array("permanent".utf8)
            Log.warn("\(ref.job) attempt \(ref.attempt) failed\(permanent ? " (input error, not retried)" : ""): \(reason)")
            active[ref] = nil
            finishedJobs += 1
            deliver(ref, PendingResult(message: WireMessage(.failed, FailedHeader(job: ref.job, attempt: ref.attempt, reason: reason, handback: false, permanent: permanent ? true : nil)), outputs: []))
        default: break
        }
    }

    /// The job ran: upload its outputs, then report DONE.
    func finish(_ ref: JobRef, _ job: ActiveJob, result: [UInt8], outputs: [JobOutput], seconds: Double) {
        finishedJobs += 1
        let artifactsMap = Dictionary(outputs.map { ($0.file, $0.hash) }, uniquingKeysWith: { a, _ in a })
        let m = WireMessage.done(DoneHeader(job: ref.job, attempt: ref.attempt, artifacts: artifactsMap, seconds: seconds), result: result)
        active[ref] = nil
        deliver(ref, PendingResult(message: m, outputs: outputs))
        if let n = options.faults.stallAfterJobs, finishedJobs >= n {
            Log.warn("fault stall-after-jobs=\(n): freezing forever")
            while true { sleep(1) }
        }
    }

    /// Keeps the result until ACKed; sends it now when connected (after its uploads).
    func deliver(_ ref: JobRef, _ r: PendingResult) {
        pending[ref] = r
        if welcomed { sendResult(ref) }
    }

    func sendResult(_ ref: JobRef) {
        guard let r = pending[ref] else { return }
        let missing = r.outputs.filter { uploadsInFlight[$0.hash] != nil || !uploadedThisConnection.contains($0.hash) }
        if !missing.isEmpty {
            for o in missing { startUpload(o, for: ref) }
            return
        }
        send(r.message)
        if options.faults.duplicateDone && r.message.command == .done { send(r.message) }
    }

    func acknowledged(_ ref: JobRef) {
        guard pending.removeValue(forKey: ref) != nil else { return }
        removeWorkDir(ref)
    }

    func removeWorkDir(_ ref: JobRef) {
        try? FileManager.default.removeItem(atPath: options.cacheDir + "/jobs/\(ref.job)-a\(ref.attempt)-\(getpid())")
    }

    func cancelJob(_ ref: JobRef, reason: String) {
        if let job = active.removeValue(forKey: ref) {
            Log.info("cancelled \(ref.job) attempt \(ref.attempt): \(reason)")
            job.control.cancel()
        }
        pending[ref] = nil
        removeWorkDir(ref)
    }

    /// After WELCOME (first or after a reconnect): restart transfers and resend unacked results.
    func resumeAfterWelcome() {
        uploadedThisConnection.removeAll()
        uploadsInFlight.removeAll()
        for job in active.values { job.uploadingCheckpoint = nil }
        for (hash, f) in fetches {
            f.receiver?.abort()
            fetches[hash] = nil
            startFetch(hash, size: f.size)
        }
        for ref in pending.keys.sorted(by: { $0.job < $1.job }) { sendResult(ref) }
    }
}

/// What an exec-job child prints after `PROGRESS `.
struct ChildProgress: Codable {
    var epoch: Int?
    var epochs: Int?
    var metrics: [String: Double]?
    var message: String?
    /// A checkpoint the child has just written (its own line, nothing else set).
    var checkpoint: ChildCheckpoint?
}

/// A checkpoint file a job's child process wrote and hashed.
struct ChildCheckpoint: Codable, Sendable {
    var epoch: Int
    var path: String
    var hash: String
    var size: Int64
}
