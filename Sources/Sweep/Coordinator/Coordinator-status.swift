import Foundation

/// Latest epoch a running attempt reported (PROGRESS), for status.
struct EpochProgress {
    var epoch: Int?
    var epochs: Int?
}

/// Outcome of every attempt, mirrored in memory so STATUS can count them without reading the
/// store: loaded once at start, then fed the same ops the store applies (same semantics: a
/// dispatch or reattach opens an attempt; `done` and `attemptEnded` update an existing one).
struct AttemptMirror {
    private(set) var outcome: [JobRef: String] = [:]
    private(set) var counts: [String: Int] = [:]
    var loaded = false

    mutating func set(_ ref: JobRef, _ new: String, onlyExisting: Bool) {
        let old = outcome[ref]
        if onlyExisting && old == nil { return }
        if let old { counts[old, default: 0] -= 1 }
        outcome[ref] = new
        counts[new, default: 0] += 1
    }

    mutating func apply(_ ops: [SweepStore.Op]) {
        guard loaded else { return }
        for op in ops {
            switch op {
            case .dispatch(let ref, _), .reattach(let ref, _): set(ref, "running", onlyExisting: false)
            case .done(let ref, _, _, _, _): set(ref, "done", onlyExisting: true)
            case .attemptEnded(let ref, let o, _): set(ref, o.rawValue, onlyExisting: true)
            default: break
            }
        }
    }
}

extension Coordinator {
    /// Reads every attempt's outcome once (after the startup commits); later ops keep it current.
    func loadAttemptMirror() throws {
        var m = AttemptMirror()
        for a in try store.attempts() {
            m.set(JobRef(job: a.job, attempt: a.attempt), a.outcome?.rawValue ?? JobState.running.rawValue, onlyExisting: false)
        }
        m.loaded = true
        attemptMirror = m
    }

    /// STATUS from anyone the transport admitted (with CURVE: a key in the allowlist). Answered
    /// at once from memory; the peer is not registered as a worker and nothing is written.
    func answerStatus(route: [UInt8], now: Double) {
        let payload: [UInt8]
        if let c = statusCache, now - c.at < 0.05 {
            payload = c.payload  // a STATUS flood costs one snapshot per 50 ms
        } else {
            payload = (try? JSONEncoder().encode(statusSnapshot(now: now))).map { Array($0) } ?? Array("{}".utf8)
            statusCache = (now, payload)
        }
        sendTo(route: route, WireMessage(.statusReply, StatusReplyHeader(), payload: [payload]))
    }

    /// The same information `status --state-dir` reads from the store, from the coordinator's
    /// in-memory state (live workers only; the store also remembers dead and departed ones).
    func statusSnapshot(now: Double) -> SweepStatus {
        var s = SweepStatus()
        s.total = jobs.count
        s.jobs = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, jobs.count($0)) }).filter { $0.value > 0 }
        s.workers = workers.sortedByID.map { w in
            SweepStatus.WorkerStatus(
                id: w.id, host: w.host, state: WorkerState.alive.rawValue, slots: w.slots, seenAgo: max(0, now - (w.expiry - timing.deadAfter)),
                running: w.running.sorted { ($0.job, $0.attempt) < ($1.job, $1.attempt) }.map {
                    SweepStatus.RunningJob(job: $0.job, attempt: $0.attempt, epoch: w.epochs[$0]?.epoch, epochs: w.epochs[$0]?.epochs)
                })
        }
        s.attempts = attemptMirror.counts.filter { $0.value > 0 }
        if let first = firstDispatch, jobs.doneThisRun > 0, lastResult > first { s.rate = Double(jobs.doneThisRun) / (lastResult - first) }
        if !searches.isEmpty {
            s.searches = searches.map { $0.search.answer.sentence(search: $0.definition.name, method: $0.definition.method, target: $0.definition.target) }
        }
        if jobs.failedCount > 0 {
            s.failedJobs = jobs.all.filter { $0.state == .failed }.sorted { $0.id < $1.id }.prefix(SweepStatus.failedShown)
                .map { SweepStatus.FailedJob(job: $0.id, reason: $0.reason ?? "") }
        }
        return s
    }
}
