import Basics
import Foundation

/// An artifact upload in progress from one worker.
final class OpenUpload {
    let receiver: ArtifactReceiver
    var lastChunk: Double
    init(receiver: ArtifactReceiver, lastChunk: Double) { self.receiver = receiver; self.lastChunk = lastChunk }
}

/// What a worker id is bound to: the CURVE key it first came with (nil without CURVE) and the
/// SHA-256 of its HELLO secret. Kept in the store, so a restarted coordinator still knows.
struct WorkerIdentity {
    var key: String?
    var secretHash: String?
}

extension Coordinator {
    // MARK: job transitions (the tables record the store ops; the cycle commits them together)

    /// Gives queued jobs to workers with free slots, one job per turn in line, so work spreads:
    /// a worker with more free slots goes to the back of the line after each job.
    func dispatch(_ now: Double) {
        while jobs.lineHasEntries && workers.lineHasEntries {
            guard let w = workers.popOffered() else { continue }
            guard let i = jobs.nextDispatchable(now) else {
                // Nothing dispatchable (held back, or the rest not queued): it keeps its place.
                workers.keepPlace(w)
                break
            }
            assign(i, to: w, now: now)
            workers.offer(w)
        }
        workers.compactLine()
        jobs.compactLine()
    }

    func assign(_ i: Int, to w: String, now: Double) {
        guard let inputs = resolveInputs(jobs[i]).map({ $0 + checkpointInputs(jobs[i]) }) else { return }
        switch jobs.dispatch(i, to: w, now: now, ops: &ops) {
        case .failed(let failed): jobsFailed(failed)
        case .sent(let ref):
            workers.hold(w, ref)
            if firstDispatch == nil { firstDispatch = now }
            let e = jobs[i]
            send(w, WireMessage.job(JobHeader(job: ref.job, attempt: ref.attempt, kind: e.kind, inputs: inputs,
                                              checkpointSeconds: checkpointSeconds(kind: e.kind)), spec: Array(e.planned.spec.utf8)))
            Log.debug("dispatch \(ref.job) attempt \(ref.attempt) -> \(w)")
        }
    }

    /// Turns planned inputs into artifact addresses; a dependency's output that is missing fails the job.
    func resolveInputs(_ e: JobRecord) -> [InputRef]? {
        var out: [InputRef] = []
        for i in e.planned.inputs {
            if let h = i.hash, let s = i.size {
                out.append(InputRef(name: i.name, hash: h, size: s, unpack: i.unpack))
            } else if let from = i.fromJob, let file = i.file {
                guard let h = producedArtifacts[from]?[file], let size = artifacts.size(h) else {
                    failJob(e.index, reason: "dependency \(from) produced no \(file)")
                    return nil
                }
                out.append(InputRef(name: i.name, hash: h, size: size, unpack: i.unpack))
            }
        }
        return out
    }

    /// Records the result unless the job table finds it stale (returned: why the result was dropped).
    @discardableResult
    func acceptDone(_ ref: JobRef, worker: String, resultJSON: String, artifactsJSON: String, seconds: Double, now: Double) -> String? {
        switch jobs.accept(ref, worker: worker, resultJSON: resultJSON, artifactsJSON: artifactsJSON, seconds: seconds, ops: &ops) {
        case .stale(let why): return why
        case .accepted(let i, let dispatchedAt, let cancelled):
            for (other, wid) in cancelled where workers[wid] != nil {
                workers.release(wid, other)
                send(wid, WireMessage(.cancel, CancelHeader(job: other.job, attempt: other.attempt, reason: JobTable.cancelReason)))
                workers.offer(wid)
            }
            dropCheckpoint(job: ref.job)
            lastResult = now
            if dispatchedAt > 0 { roundTrips.append(now - dispatchedAt) }
            searchResult(jobs[i], resultJSON: resultJSON)
            return nil
        }
    }

    /// An attempt ended without a result. `counts`: towards max attempts (failure, death);
    /// handbacks and cancellations do not.
    /// `permanent`: the job's input is at fault, so it fails now rather than after `maxAttempts`.
    func attemptFailed(_ ref: JobRef, outcome: AttemptOutcome, reason: String, counts: Bool, permanent: Bool = false) {
        let end = jobs.endAttempt(ref, outcome: outcome, reason: reason, counts: counts, permanent: permanent, ops: &ops) { failures, w in
            try? self.committer?.waitIdle()  // the store as committed so far (the committer is its writer)
            let earlier: [AttemptRow] = ((try? self.store.attempts(job: ref.job)) ?? []).filter { $0.attempt != ref.attempt }
            let lines: [String] = earlier.map { a in
                "attempt \(a.attempt) on \(a.worker): \(a.outcome?.rawValue ?? "") (\(a.reason ?? ""))"
            }
            let reasons = lines + ["attempt \(ref.attempt) on \(w): \(outcome.rawValue) (\(reason))"]
            return "failed after \(failures) attempts: " + reasons.joined(separator: "; ")
        }
        let w: String, failed: [Int]
        switch end {
        case .notOpen, .superseded: return
        case .requeued(let worker): (w, failed) = (worker, [])
        case .failed(let worker, let jobsFailed): (w, failed) = (worker, jobsFailed)
        }
        progressView.jobEvent("\(ref.job) attempt \(ref.attempt) on \(w) \(outcome.rawValue): \(reason)", kind: jobs[ref.job]?.kind ?? "",
                              total: jobs.count, important: true)
        jobsFailed(failed)
    }

    func failJob(_ i: Int, reason: String) {
        jobsFailed(jobs.fail(i, reason: reason, ops: &ops))
    }

    /// Jobs the table failed (a job, then the jobs depending on it): said, and told to their searches.
    func jobsFailed(_ failed: [Int]) {
        for i in failed {
            let e = jobs[i]
            Log.warn("job \(e.id) FAILED: \(e.reason ?? "")")
            searchResult(e, resultJSON: nil)
        }
    }

    // MARK: liveness (Paranoid Pirate)

    /// Heartbeats to workers we have not sent to for a heartbeat; with `expire`, declares dead the
    /// ones silent past the liveness limit (not while the receive queue holds unread messages:
    /// theirs may be among them).
    func checkLiveness(_ now: Double, expire: Bool = true) {
        if expire { closeIdleUploads(now) }
        // Decided first, then done: the table changes as workers go and heartbeats are sent.
        var silent: [String] = [], quiet: [String] = []
        for w in workers.all {
            if expire && now > w.expiry { silent.append(w.id) } else if now - w.lastSent >= timing.heartbeat { quiet.append(w.id) }
        }
        for id in silent { declareDead(id, reason: "worker \(id) silent for \(String(format: "%.1f", timing.deadAfter))s") }
        for id in quiet { send(id, WireMessage(.heartbeat, header: WireMessage.emptyHeader)) }
    }

    // MARK: per-job timeout

    /// Cancels every attempt that has run longer than `jobTimeout` on a worker that is still alive
    /// (a dead worker's jobs are requeued by liveness): CANCEL to the worker (which kills the job's
    /// process), the attempt fails with "timed out after N s" (counts towards max_attempts), and
    /// the job is queued again or fails. A DONE that arrives later for the attempt is dropped as
    /// stale (`acceptDone`: the attempt is no longer open).
    func checkJobTimeouts(_ now: Double) {
        guard let limit = jobTimeout else { return }
        for w in workers.all {
            var expired: [JobRef] = []
            for ref in w.running {
                guard let started = jobs.startedAt(ref) else { continue }
                if now - started > limit { expired.append(ref) }
            }
            for ref in expired.sorted(by: { ($0.job, $0.attempt) < ($1.job, $1.attempt) }) {
                let reason = "timed out after \(Coordinator.seconds(limit)) s"
                Log.warn("\(ref.job) attempt \(ref.attempt) on \(w.id) \(reason): cancelled")
                workers.release(w.id, ref)
                send(w.id, WireMessage(.cancel, CancelHeader(job: ref.job, attempt: ref.attempt, reason: reason)))
                ops.append(.event(kind: SweepEventKind.timeout.rawValue, job: ref.job, attempt: ref.attempt, worker: w.id, detail: reason))
                attemptFailed(ref, outcome: .failed, reason: reason, counts: true)
            }
            if !expired.isEmpty { workers.offer(w.id) }
        }
    }

    /// "5" for whole seconds, "1.5" otherwise.
    static func seconds(_ s: Double) -> String {
        s == s.rounded() && abs(s) < 1e15 ? String(Int(s)) : String(format: "%g", s)
    }

    func declareDead(_ id: String, reason: String) {
        Log.warn("\(reason): declared dead, \(workers[id]?.running.count ?? 0) job(s) go back to the queue")
        removeWorker(id, outcome: .dead, reason: reason, counts: true)
        ops.append(.workerState(id: id, state: WorkerState.dead.rawValue))
        ops.append(.event(kind: SweepEventKind.workerDead.rawValue, job: nil, attempt: nil, worker: id, detail: reason))
    }

    /// The worker is gone: every attempt it held ends with `outcome` (its jobs queued again or
    /// failed), and its unfinished uploads go with it (temp files removed).
    func removeWorker(_ id: String, outcome: AttemptOutcome, reason: String, counts: Bool) {
        guard let w = workers.remove(id) else { return }
        for ref in w.running.sorted(by: { $0.job < $1.job }) { attemptFailed(ref, outcome: outcome, reason: reason, counts: counts) }
        for u in (uploads.removeValue(forKey: id) ?? [:]).values { u.receiver.abort() }
    }
}
