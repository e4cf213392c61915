import Basics
import Foundation

/// One job as the coordinator tracks it. Only `JobTable` changes it.
struct JobRecord {
    let index: Int
    let planned: PlannedJob
    /// The store's state, with the same meaning: `queued` covers a job whose dependencies are not
    /// done yet (`remainingDeps > 0`) and one in the dispatch line.
    fileprivate(set) var state = JobState.queued
    /// Last attempt number issued; the next dispatch uses attempt + 1.
    fileprivate(set) var attempt: Int
    /// Attempts that count towards `maxAttempts` (failed, or worker declared dead).
    fileprivate(set) var failures: Int
    let maxAttempts: Int
    fileprivate(set) var remainingDeps = 0
    fileprivate(set) var dependents: [Int] = []
    /// Open attempts: attempt -> worker id (normally one; two when a reattach races a re-dispatch).
    fileprivate(set) var runningOn: [Int: String] = [:]
    /// Attempts interrupted by a coordinator restart -> the worker they were dispatched to: that
    /// worker (and only it) may reattach them or report their result.
    fileprivate(set) var orphaned: [Int: String] = [:]
    /// A restarted coordinator holds the job back until then, so its worker can reattach it.
    fileprivate(set) var notBefore: Double = 0
    fileprivate(set) var dispatchedAt: Double = 0
    /// When each open attempt was dispatched (or reattached after a coordinator restart): the
    /// per-job timeout counts from here.
    fileprivate(set) var attemptStarted: [Int: Double] = [:]
    /// Why the job failed (shown by status).
    fileprivate(set) var reason: String?

    init(index: Int, planned: PlannedJob, attempt: Int, failures: Int, maxAttempts: Int) {
        self.index = index; self.planned = planned; self.attempt = attempt; self.failures = failures; self.maxAttempts = maxAttempts
    }

    var id: String { planned.id }
    var kind: String { planned.kind }
    var terminal: Bool { state == .done || state == .failed }
    /// Who holds an attempt: the worker it is open on, or (after a coordinator restart) the worker
    /// it was dispatched to.
    func holder(_ attempt: Int) -> String? { runningOn[attempt] ?? orphaned[attempt] }
}

/// Every job of the sweep, its state and the transitions between them (queued -> running ->
/// done/failed, retries, dependencies, the FIFO dispatch line), with the counters kept in one
/// place (`setState`). No sockets and no store: each transition appends the store ops it implies
/// to the caller's list, and returns what the caller (the coordinator) must tell workers, log or
/// feed to searches. Transitions that can fail jobs return their indices, dependents after the
/// job they depend on.
struct JobTable {
    private var records: [JobRecord] = []
    private var indexByID: [String: Int] = [:]
    /// Queued jobs whose dependencies are done, in the order they became dispatchable.
    private var line: [Int] = []
    private var lineHead = 0
    /// Jobs taken from the line before their `notBefore`: back into it by `releaseHeld`.
    private var held: [Int] = []
    private var counts: [JobState: Int] = [:]
    /// Jobs finished by this coordinator (not loaded as done).
    private(set) var doneThisRun = 0

    // MARK: reading

    var count: Int { records.count }
    var all: [JobRecord] { records }
    subscript(index: Int) -> JobRecord { records[index] }
    subscript(id: String) -> JobRecord? { indexByID[id].map { records[$0] } }
    func index(of id: String) -> Int? { indexByID[id] }
    func count(_ state: JobState) -> Int { counts[state] ?? 0 }
    var doneCount: Int { count(.done) }
    var failedCount: Int { count(.failed) }
    var terminalCount: Int { doneCount + failedCount }
    var allTerminal: Bool { terminalCount == records.count }
    /// Whether the dispatch line has entries (some may turn out not dispatchable).
    var lineHasEntries: Bool { lineHead < line.count }
    /// Queued jobs in the dispatch line now (not held back).
    var dispatchableCount: Int {
        var n = 0
        for i in line[lineHead...] where records[i].state == .queued { n += 1 }
        return n
    }

    /// First valid result wins: the job must not be finished and the attempt must be open on this
    /// worker (or orphaned by a coordinator restart while dispatched to it). Anything else is a
    /// late duplicate (dropped); nil when the result may be accepted.
    func staleReason(_ ref: JobRef, worker: String) -> String? {
        guard let e = self[ref.job] else { return "unknown job" }
        if e.terminal { return "job already \(e.state.rawValue)" }
        guard e.runningOn[ref.attempt] == worker || e.orphaned[ref.attempt] == worker else {
            return "attempt \(ref.attempt) is not open on \(worker) (current attempt \(e.attempt))"
        }
        return nil
    }

    /// The job's current attempt, open on `worker`: it may store a checkpoint.
    func isCurrentAttempt(_ ref: JobRef, on worker: String) -> Bool {
        guard let e = self[ref.job] else { return false }
        return !e.terminal && e.runningOn[ref.attempt] == worker && e.attempt == ref.attempt
    }

    /// When the attempt started running (for the per-job timeout).
    func startedAt(_ ref: JobRef) -> Double? {
        self[ref.job].map { $0.attemptStarted[ref.attempt] ?? $0.dispatchedAt }
    }

    // MARK: loading

    /// Builds the table from the store's rows. Jobs that were running when an earlier coordinator
    /// died are queued again (`requeue` op) and held back until `now + grace`, so their workers can
    /// reattach; `orphaned` names, per job, the attempts such a worker may still report on.
    mutating func resume(_ stored: [SweepStore.StoredJob], orphaned: [String: [Int: String]], now: Double, grace: Double,
                         ops: inout [SweepStore.Op]) throws -> [Int] {
        for s in stored {
            var e = JobRecord(index: records.count, planned: s.job, attempt: s.attempt, failures: s.failures, maxAttempts: s.maxAttempts)
            e.orphaned = orphaned[s.job.id] ?? [:]
            switch s.state {
            case .done, .queued: e.state = s.state
            case .failed: e.state = .failed; e.reason = s.reason
            case .running:
                e.state = .queued
                ops.append(.requeue(job: s.job.id, failures: s.failures))
                e.notBefore = now + grace
            }
            counts[e.state, default: 0] += 1
            indexByID[s.job.id] = e.index
            records.append(e)
        }
        for i in records.indices {
            for d in records[i].planned.deps {
                guard let di = indexByID[d] else { throw SweepError.invalid("job \(records[i].id) depends on unknown job \(d)") }
                records[di].dependents.append(i)
                if records[di].state != .done { records[i].remainingDeps += 1 }
            }
        }
        var failed: [Int] = []
        for i in records.indices where records[i].state == .queued {
            let failedDeps = records[i].planned.deps.filter { self[$0]?.state == .failed }
            if !failedDeps.isEmpty {
                failed += fail(i, reason: "dependency failed: \(failedDeps.joined(separator: ", "))", ops: &ops)
            } else if records[i].remainingDeps == 0 {
                line.append(i)
            }
        }
        return failed
    }

    /// Adds a job while the sweep runs (a search's probe). A dependency that is unknown or failed
    /// fails it at once. Returns the jobs that failed.
    mutating func add(_ job: PlannedJob, maxAttempts: Int, ops: inout [SweepStore.Op]) -> [Int] {
        var e = JobRecord(index: records.count, planned: job, attempt: 0, failures: 0, maxAttempts: maxAttempts)
        var failedDeps: [String] = []
        for dep in job.deps {
            guard let di = indexByID[dep] else { failedDeps.append(dep); continue }
            records[di].dependents.append(e.index)
            if records[di].state == .failed { failedDeps.append(dep) } else if records[di].state != .done { e.remainingDeps += 1 }
        }
        counts[.queued, default: 0] += 1
        indexByID[job.id] = e.index
        records.append(e)
        if !failedDeps.isEmpty { return fail(e.index, reason: "dependency failed: \(failedDeps.joined(separator: ", "))", ops: &ops) }
        if e.remainingDeps == 0 { line.append(e.index) }
        return []
    }

    // MARK: dispatch

    /// Puts held-back jobs whose time has come back into the dispatch line.
    mutating func releaseHeld(_ now: Double) {
        if held.isEmpty { return }
        var still: [Int] = []
        for i in held where records[i].state == .queued {
            if records[i].notBefore > now { still.append(i) } else { line.append(i) }
        }
        held = still
    }

    /// The next job to dispatch, taken from the line (nil: none now). Entries of jobs no longer
    /// queued are dropped; jobs held back until later go aside.
    mutating func nextDispatchable(_ now: Double) -> Int? {
        while lineHead < line.count {
            let i = line[lineHead]
            lineHead += 1
            guard records[i].state == .queued else { continue }
            if records[i].notBefore > now { held.append(i); continue }
            return i
        }
        return nil
    }

    /// Drops the line's served entries once they are most of it.
    mutating func compactLine() {
        if lineHead > 4096 && lineHead * 2 > line.count {
            line.removeFirst(lineHead)
            lineHead = 0
        }
    }

    enum Dispatch {
        case sent(JobRef)
        /// The job could not be dispatched and failed (with these jobs).
        case failed([Int])
    }

    /// Opens the job's next attempt on `worker`.
    mutating func dispatch(_ i: Int, to worker: String, now: Double, ops: inout [SweepStore.Op]) -> Dispatch {
        // The store is validated on open and peers cannot raise attempt numbers, so this holds;
        // if it ever did not, the job fails with a reason instead of the coordinator trapping.
        guard records[i].attempt >= 0 && records[i].attempt < Wire.maxAttempt else {
            return .failed(fail(i, reason: "attempt number \(records[i].attempt) cannot be raised (limit \(Wire.maxAttempt))", ops: &ops))
        }
        setState(i, .running)
        records[i].attempt += 1
        records[i].dispatchedAt = now
        records[i].attemptStarted = [records[i].attempt: now]
        records[i].runningOn[records[i].attempt] = worker
        let ref = JobRef(job: records[i].id, attempt: records[i].attempt)
        ops.append(.dispatch(ref, worker: worker))
        return .sent(ref)
    }

    // MARK: results

    enum Acceptance {
        /// Dropped: a late or duplicate result (why).
        case stale(String)
        /// Recorded; the job's other open attempts were ended (their workers must be told).
        case accepted(index: Int, dispatchedAt: Double, cancelled: [(ref: JobRef, worker: String)])
    }

    /// Records a result unless `staleReason` has one. Dependents whose last dependency this was
    /// join the dispatch line.
    mutating func accept(_ ref: JobRef, worker: String, resultJSON: String, artifactsJSON: String, seconds: Double,
                         ops: inout [SweepStore.Op]) -> Acceptance {
        if let why = staleReason(ref, worker: worker) { return .stale(why) }
        let i = indexByID[ref.job]!
        ops.append(.done(ref, worker: worker, result: resultJSON, artifacts: artifactsJSON, seconds: seconds))
        var cancelled: [(ref: JobRef, worker: String)] = []
        for (a, w) in records[i].runningOn where a != ref.attempt {
            let other = JobRef(job: ref.job, attempt: a)
            ops.append(.attemptEnded(other, outcome: .cancelled, reason: JobTable.cancelReason))
            cancelled.append((other, w))
        }
        setState(i, .done)
        records[i].runningOn.removeAll()
        doneThisRun += 1
        for d in records[i].dependents {
            records[d].remainingDeps -= 1
            if records[d].remainingDeps == 0 && records[d].state == .queued { line.append(d) }
        }
        return .accepted(index: i, dispatchedAt: records[i].dispatchedAt, cancelled: cancelled)
    }

    static let cancelReason = "another attempt finished first"

    enum AttemptEnd: Equatable {
        /// The attempt was not open (already ended): nothing changed.
        case notOpen
        /// Recorded; the job is finished or another attempt of it still runs.
        case superseded(worker: String)
        /// Queued again for another attempt.
        case requeued(worker: String)
        /// Failed (with these jobs): its attempts are used up, or its input is at fault.
        case failed(worker: String, jobs: [Int])
    }

    /// An attempt ended without a result. `counts`: towards max attempts (failure, death);
    /// handbacks and cancellations do not. `permanent`: the job's input is at fault, so it fails
    /// now rather than after `maxAttempts`. `exhaustedReason` words why a job whose attempts are
    /// used up failed (given the failures counted and the last attempt's worker).
    mutating func endAttempt(_ ref: JobRef, outcome: AttemptOutcome, reason: String, counts: Bool, permanent: Bool = false,
                             ops: inout [SweepStore.Op],
                             exhaustedReason: (_ failures: Int, _ worker: String) -> String = { n, _ in "failed after \(n) attempts" })
        -> AttemptEnd {
        guard let i = indexByID[ref.job], let w = records[i].runningOn.removeValue(forKey: ref.attempt) else { return .notOpen }
        ops.append(.attemptEnded(ref, outcome: outcome, reason: reason))
        if records[i].terminal || !records[i].runningOn.isEmpty { return .superseded(worker: w) }
        if counts { records[i].failures += 1 }
        if permanent { return .failed(worker: w, jobs: fail(i, reason: "input error, not retried: \(reason)", ops: &ops)) }
        if records[i].failures >= records[i].maxAttempts {
            return .failed(worker: w, jobs: fail(i, reason: exhaustedReason(records[i].failures, w), ops: &ops))
        }
        setState(i, .queued)
        ops.append(.requeue(job: ref.job, failures: records[i].failures))
        line.append(i)
        return .requeued(worker: w)
    }

    /// Fails the job and, after it, every job that depends on it (not those already finished).
    mutating func fail(_ i: Int, reason: String, ops: inout [SweepStore.Op]) -> [Int] {
        if records[i].terminal { return [] }
        setState(i, .failed)
        records[i].reason = reason
        ops.append(.failJob(job: records[i].id, failures: records[i].failures, reason: reason))
        var failed = [i]
        for d in records[i].dependents { failed += fail(d, reason: "dependency \(records[i].id) failed", ops: &ops) }
        return failed
    }

    // MARK: reattach

    enum Reattach: Equatable {
        /// Open on this worker already.
        case ours
        /// An attempt dispatched to this worker before a coordinator restart: running again.
        case reattached
        /// Not this worker's to hold (why): it must forget it.
        case stale(String)
    }

    /// A worker says (HELLO) it holds this attempt. Only an attempt the store records for this
    /// very worker is taken back; never a job or attempt number the worker merely names.
    mutating func reattach(_ ref: JobRef, worker: String, now: Double, ops: inout [SweepStore.Op]) -> Reattach {
        guard let i = indexByID[ref.job] else { return .stale("no such job") }
        if records[i].terminal { return .stale("job already \(records[i].state.rawValue)") }
        if records[i].runningOn[ref.attempt] == worker { return .ours }
        guard records[i].runningOn[ref.attempt] == nil && records[i].orphaned[ref.attempt] == worker else {
            // Declared dead meanwhile, superseded, or never this worker's.
            return .stale("attempt \(ref.attempt) is not open on this worker")
        }
        records[i].orphaned[ref.attempt] = nil
        records[i].runningOn[ref.attempt] = worker
        if records[i].state != .running {
            setState(i, .running)
            records[i].dispatchedAt = now
        }
        records[i].attemptStarted[ref.attempt] = now
        ops.append(.reattach(ref, worker: worker))
        return .reattached
    }

    // MARK: the one place states change

    private mutating func setState(_ i: Int, _ new: JobState) {
        let old = records[i].state
        if old == new { return }
        counts[old, default: 0] -= 1
        counts[new, default: 0] += 1
        records[i].state = new
    }
}
