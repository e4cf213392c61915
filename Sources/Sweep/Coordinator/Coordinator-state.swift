import Basics
import Foundation

/// One job as the coordinator tracks it (owned by the coordinator thread).
final class JobEntry {
    enum State { case waiting, queued, running, done, failed }
    let index: Int
    let planned: PlannedJob
    var state = State.waiting
    /// Last attempt number issued; the next dispatch uses attempt + 1.
    var attempt: Int
    /// Attempts that count towards `maxAttempts` (failed, or worker declared dead).
    var failures: Int
    let maxAttempts: Int
    var remainingDeps = 0
    var dependents: [Int] = []
    /// Open attempts: attempt -> worker id (normally one; two when a reattach races a re-dispatch).
    var runningOn: [Int: String] = [:]
    /// Attempts interrupted by a coordinator restart -> the worker they were dispatched to: that
    /// worker (and only it) may reattach them or report their result.
    var orphaned: [Int: String] = [:]
    var notBefore: Double = 0
    var dispatchedAt: Double = 0
    /// When each open attempt was dispatched (or reattached after a coordinator restart): the
    /// per-job timeout counts from here.
    var attemptStarted: [Int: Double] = [:]
    /// Why the job failed (shown by status).
    var reason: String?
    lazy var specBytes: [UInt8] = Array(planned.spec.utf8)

    init(index: Int, planned: PlannedJob, attempt: Int, failures: Int, maxAttempts: Int) {
        self.index = index; self.planned = planned; self.attempt = attempt; self.failures = failures; self.maxAttempts = maxAttempts
    }

    var terminal: Bool { state == .done || state == .failed }
}

/// One connected worker: explicit record with one owner and an expiry time (zguide ppqueue).
final class WorkerEntry {
    let id: String
    var route: [UInt8]
    let host: String
    let slots: Int
    let threads: Int
    var running = Set<JobRef>()
    var ready = false
    /// In the coordinator's dispatch line (`Coordinator.offer`).
    var offered = false
    var expiry: Double
    var lastSent: Double = 0
    /// Latest progress line per running job, for the display.
    var progress: [String: String] = [:]
    /// Latest epoch (and epoch count) per running attempt, for status.
    var epochs: [JobRef: EpochProgress] = [:]
    /// Uploads in progress (PUT), by artifact hash; closed when the worker goes or they fall silent.
    var uploads: [String: OpenUpload] = [:]

    init(id: String, route: [UInt8], host: String, slots: Int, threads: Int, expiry: Double) {
        self.id = id; self.route = route; self.host = host; self.slots = slots; self.threads = threads; self.expiry = expiry
    }

    var free: Int { slots - running.count }
}

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
    // MARK: job transitions (each records its store ops; the cycle commits them together)

    func makeReady(_ e: JobEntry) {
        e.state = .queued
        readyQueue.append(e.index)
    }

    func releaseHeld(_ now: Double) {
        if held.isEmpty { return }
        var still: [Int] = []
        for i in held {
            let e = jobs[i]
            if e.state != .queued { continue }
            if e.notBefore > now { still.append(i) } else { readyQueue.append(i) }
        }
        held = still
    }

    /// Puts a worker that may have a free slot at the back of the dispatch line (once).
    func offer(_ w: WorkerEntry) {
        guard !w.offered, w.ready, w.free > 0, workers[w.id] === w else { return }
        w.offered = true
        offered.append(w)
    }

    /// Gives queued jobs to workers with free slots, one job per turn in line, so work spreads:
    /// a worker with more free slots goes to the back of the line after each job. The line holds
    /// the workers that got a free slot since they were last served (zguide's LRU queue), so a
    /// dispatch costs the same with 10 workers connected as with 10,000.
    func dispatch(_ now: Double) {
        while readyHead < readyQueue.count && offeredHead < offered.count {
            let w = offered[offeredHead]
            offeredHead += 1
            w.offered = false
            // Gone, not ready (handing back), or full since it was offered: it is offered again
            // when that changes.
            guard workers[w.id] === w, w.ready, w.free > 0 else { continue }
            guard let e = nextReady(now) else {
                // Nothing dispatchable (held back, or the rest not queued): it keeps its place.
                offeredHead -= 1
                w.offered = true
                break
            }
            assign(e, to: w, now: now)
            offer(w)
        }
        if offeredHead > 4096 && offeredHead * 2 > offered.count {
            offered.removeFirst(offeredHead)
            offeredHead = 0
        }
        if readyHead > 4096 && readyHead * 2 > readyQueue.count {
            readyQueue.removeFirst(readyHead)
            readyHead = 0
        }
    }

    func nextReady(_ now: Double) -> JobEntry? {
        while readyHead < readyQueue.count {
            let e = jobs[readyQueue[readyHead]]
            readyHead += 1
            guard e.state == .queued else { continue }
            if e.notBefore > now { held.append(e.index); continue }
            return e
        }
        return nil
    }

    func assign(_ e: JobEntry, to w: WorkerEntry, now: Double) {
        guard let inputs = resolveInputs(e).map({ $0 + checkpointInputs(e) }) else { return }
        // The store is validated on open and peers cannot raise attempt numbers, so this holds;
        // if it ever did not, the job fails with a reason instead of the coordinator trapping.
        guard e.attempt >= 0 && e.attempt < Wire.maxAttempt else {
            return failJob(e, reason: "attempt number \(e.attempt) cannot be raised (limit \(Wire.maxAttempt))")
        }
        e.attempt += 1
        e.state = .running
        e.dispatchedAt = now
        e.attemptStarted = [e.attempt: now]
        let ref = JobRef(job: e.planned.id, attempt: e.attempt)
        e.runningOn[e.attempt] = w.id
        w.running.insert(ref)
        if firstDispatch == nil { firstDispatch = now }
        ops.append(.dispatch(ref, worker: w.id))
        send(w, WireMessage.job(JobHeader(job: ref.job, attempt: ref.attempt, kind: e.planned.kind, inputs: inputs,
                                          checkpointSeconds: checkpointSeconds(kind: e.planned.kind)), spec: e.specBytes))
        Log.debug("dispatch \(ref.job) attempt \(ref.attempt) -> \(w.id)")
    }

    /// Turns planned inputs into artifact addresses; a dependency's output that is missing fails the job.
    func resolveInputs(_ e: JobEntry) -> [InputRef]? {
        var out: [InputRef] = []
        for i in e.planned.inputs {
            if let h = i.hash, let s = i.size {
                out.append(InputRef(name: i.name, hash: h, size: s, unpack: i.unpack))
            } else if let from = i.fromJob, let file = i.file {
                guard let h = producedArtifacts[from]?[file], let size = artifacts.size(h) else {
                    failJob(e, reason: "dependency \(from) produced no \(file)")
                    return nil
                }
                out.append(InputRef(name: i.name, hash: h, size: size, unpack: i.unpack))
            }
        }
        return out
    }

    /// First valid result wins: the job must not be finished and the attempt must be open on this
    /// worker (or orphaned by a coordinator restart while dispatched to it). Anything else is a
    /// late duplicate (dropped); nil when the result may be accepted.
    func staleReason(_ ref: JobRef, worker: String) -> String? {
        guard let i = jobIndex[ref.job] else { return "unknown job" }
        let e = jobs[i]
        if e.terminal { return "job already \(e.state == .done ? "done" : "failed")" }
        guard e.runningOn[ref.attempt] == worker || e.orphaned[ref.attempt] == worker else {
            return "attempt \(ref.attempt) is not open on \(worker) (current attempt \(e.attempt))"
        }
        return nil
    }

    /// Records the result unless `staleReason` has one (returned: the result was dropped).
    @discardableResult
    func acceptDone(_ ref: JobRef, worker: String, resultJSON: String, artifactsJSON: String, seconds: Double, now: Double) -> String? {
        if let why = staleReason(ref, worker: worker) { return why }
        let e = jobs[jobIndex[ref.job]!]
        ops.append(.done(ref, worker: worker, result: resultJSON, artifacts: artifactsJSON, seconds: seconds))
        cancelOtherAttempts(e, except: ref.attempt, reason: "another attempt finished first")
        e.state = .done
        e.runningOn.removeAll()
        dropCheckpoint(job: ref.job)
        doneCount += 1
        terminalCount += 1
        doneThisRun += 1
        lastResult = now
        if e.dispatchedAt > 0 { roundTrips.append(now - e.dispatchedAt) }
        for d in e.dependents {
            let de = jobs[d]
            de.remainingDeps -= 1
            if de.remainingDeps == 0 && de.state == .waiting { makeReady(de) }
        }
        searchResult(e, resultJSON: resultJSON)
        return nil
    }

    /// An attempt ended without a result. `counts`: towards max attempts (failure, death);
    /// handbacks and cancellations do not.
    /// `permanent`: the job's input is at fault, so it fails now rather than after `maxAttempts`.
    func attemptFailed(_ ref: JobRef, outcome: AttemptOutcome, reason: String, counts: Bool, permanent: Bool = false) {
        guard let i = jobIndex[ref.job] else { return }
        let e = jobs[i]
        guard let w = e.runningOn.removeValue(forKey: ref.attempt) else { return }
        ops.append(.attemptEnded(ref, outcome: outcome, reason: reason))
        if e.terminal || !e.runningOn.isEmpty { return }  // another attempt is still going
        if counts { e.failures += 1 }
        progressView.jobEvent("\(ref.job) attempt \(ref.attempt) on \(w) \(outcome.rawValue): \(reason)", kind: e.planned.kind, coordinator: self, important: true)
        if permanent {
            failJob(e, reason: "input error, not retried: \(reason)")
        } else if e.failures >= e.maxAttempts {
            try? committer?.waitIdle()  // the store as committed so far (the committer is its writer)
            let earlier: [AttemptRow] = ((try? store.attempts(job: ref.job)) ?? []).filter { $0.attempt != ref.attempt }
            let lines: [String] = earlier.map { a in
                "attempt \(a.attempt) on \(a.worker): \(a.outcome?.rawValue ?? "") (\(a.reason ?? ""))"
            }
            let reasons = lines + ["attempt \(ref.attempt) on \(w): \(outcome.rawValue) (\(reason))"]
            failJob(e, reason: "failed after \(e.failures) attempts: " + reasons.joined(separator: "; "))
        } else {
            e.state = .queued
            ops.append(.requeue(job: ref.job, failures: e.failures))
            readyQueue.append(e.index)
        }
    }

    func failJob(_ e: JobEntry, reason: String) {
        if e.terminal { return }
        e.state = .failed
        e.reason = reason
        failedCount += 1
        terminalCount += 1
        ops.append(.failJob(job: e.planned.id, failures: e.failures, reason: reason))
        Log.warn("job \(e.planned.id) FAILED: \(reason)")
        searchResult(e, resultJSON: nil)
        for d in e.dependents { failJob(jobs[d], reason: "dependency \(e.planned.id) failed") }
    }

    func cancelOtherAttempts(_ e: JobEntry, except attempt: Int, reason: String) {
        for (a, wid) in e.runningOn where a != attempt {
            let ref = JobRef(job: e.planned.id, attempt: a)
            ops.append(.attemptEnded(ref, outcome: .cancelled, reason: reason))
            if let w = workers[wid] {
                w.running.remove(ref)
                w.progress[ref.job] = nil; w.epochs[ref] = nil
                send(w, WireMessage(.cancel, CancelHeader(job: ref.job, attempt: a, reason: reason)))
                offer(w)
            }
        }
    }

    // MARK: liveness (Paranoid Pirate)

    /// Heartbeats to workers we have not sent to for a heartbeat; with `expire`, declares dead the
    /// ones silent past the liveness limit (not while the receive queue holds unread messages:
    /// theirs may be among them).
    func checkLiveness(_ now: Double, expire: Bool = true) {
        if expire { closeIdleUploads(now) }
        for w in workers.values {
            if expire && now > w.expiry {
                declareDead(w, reason: "worker \(w.id) silent for \(String(format: "%.1f", timing.deadAfter))s")
            } else if now - w.lastSent >= timing.heartbeat {
                send(w, WireMessage(.heartbeat, header: WireMessage.emptyHeader))
            }
        }
    }

    // MARK: per-job timeout

    /// Cancels every attempt that has run longer than `jobTimeout` on a worker that is still alive
    /// (a dead worker's jobs are requeued by liveness): CANCEL to the worker (which kills the job's
    /// process), the attempt fails with "timed out after N s" (counts towards max_attempts), and
    /// the job is queued again or fails. A DONE that arrives later for the attempt is dropped as
    /// stale (`acceptDone`: the attempt is no longer open).
    func checkJobTimeouts(_ now: Double) {
        guard let limit = jobTimeout else { return }
        for w in workers.values {
            var expired: [JobRef] = []
            for ref in w.running {
                guard let i = jobIndex[ref.job] else { continue }
                let e = jobs[i]
                if now - (e.attemptStarted[ref.attempt] ?? e.dispatchedAt) > limit { expired.append(ref) }
            }
            for ref in expired.sorted(by: { ($0.job, $0.attempt) < ($1.job, $1.attempt) }) {
                let reason = "timed out after \(Coordinator.seconds(limit)) s"
                Log.warn("\(ref.job) attempt \(ref.attempt) on \(w.id) \(reason): cancelled")
                w.running.remove(ref)
                w.progress[ref.job] = nil
                w.epochs[ref] = nil
                send(w, WireMessage(.cancel, CancelHeader(job: ref.job, attempt: ref.attempt, reason: reason)))
                ops.append(.event(kind: "timeout", job: ref.job, attempt: ref.attempt, worker: w.id, detail: reason))
                attemptFailed(ref, outcome: .failed, reason: reason, counts: true)
            }
            if !expired.isEmpty { offer(w) }
        }
    }

    /// "5" for whole seconds, "1.5" otherwise.
    static func seconds(_ s: Double) -> String {
        s == s.rounded() && abs(s) < 1e15 ? String(Int(s)) : String(format: "%g", s)
    }

    func declareDead(_ w: WorkerEntry, reason: String) {
        Log.warn("\(reason): declared dead, \(w.running.count) job(s) go back to the queue")
        removeWorker(w, outcome: .dead, reason: reason, counts: true)
        ops.append(.workerState(id: w.id, state: "dead"))
        ops.append(.event(kind: "worker-dead", job: nil, attempt: nil, worker: w.id, detail: reason))
    }

    func removeWorker(_ w: WorkerEntry, outcome: AttemptOutcome, reason: String, counts: Bool) {
        workers[w.id] = nil
        if workerByRoute[w.route] == w.id { workerByRoute[w.route] = nil }
        for ref in w.running.sorted(by: { $0.job < $1.job }) { attemptFailed(ref, outcome: outcome, reason: reason, counts: counts) }
        w.running.removeAll()
        // Its unfinished uploads go with it (temp files removed).
        for u in w.uploads.values { u.receiver.abort() }
        w.uploads.removeAll()
    }
}
