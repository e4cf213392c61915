import Basics
import CSupport
import CZeroMQ
import Foundation

/// The sweep coordinator: one thread, one ROUTER socket, one poll loop (zguide "ppqueue"/"mdbroker"
/// shape). Each cycle: wait for input up to the tick, drain every queued message, dispatch to free
/// slots, run liveness, commit all state changes of the cycle in one SQLite transaction, and only
/// then send the replies (so nothing a worker is told depends on state that could be lost).
/// Job and worker state live in `JobTable` and `WorkerTable`: this class is the loop that feeds
/// them what workers say, and does the sockets, the store and the artifacts.
public final class Coordinator {
    let options: CoordinatorOptions
    let onSweepComplete: SweepCompletionHook
    let reporter: SweepReporter?
    let timing: Timing
    let store: SweepStore
    let artifacts: ArtifactStore
    /// Held while this coordinator lives: `retry` (and a second coordinator) refuse the state dir.
    private let lock: StateLock
    private let context: ZMQContext
    private var router: ZMQSocket!

    // Job and worker state (owned by the coordinator thread; only the tables change it).
    var jobs = JobTable()
    var workers: WorkerTable
    var producedArtifacts: [String: [String: String]] = [:]
    /// Targeted searches (`target:`), whose probes are added as jobs while the sweep runs.
    var searches: [SearchEntry] = []

    /// Every worker id ever registered with this state dir -> what it is bound to (key, secret).
    var identities: [String: WorkerIdentity] = [:]
    /// Routing id -> the worker id it first said HELLO as: one connection speaks for one worker.
    var routeOwner: [[UInt8]: String] = [:]
    /// Uploads in progress (PUT) per worker id, by artifact hash; closed when the worker goes or
    /// they fall silent.
    var uploads: [String: [String: OpenUpload]] = [:]
    /// Dropped and refused messages, aggregated per peer, kind and minute.
    var eventCounts = EventCounts()
    /// The last STATUS reply (a STATUS flood is answered from it for a few milliseconds).
    var statusCache: (at: Double, payload: [UInt8])?
    private var sendFailures = 0

    // Per-cycle buffers.
    var ops: [SweepStore.Op] = []
    private var outbox: [(route: [UInt8], frames: [[UInt8]])] = []
    var acks: [String: [JobRef]] = [:]
    /// The store's writer while `run` serves (nil before and after: then `commit` writes directly).
    var committer: GroupCommitter?
    /// The poll thread's end of the committer's wake-up pair.
    private var committerWake: ZMQSocket?
    /// ACKs waiting for the commit that covers their results: (batch number, worker -> refs), in order.
    private var pendingAcks: [(batch: Int, acks: [String: [JobRef]])] = []
    /// Messages read per poll cycle at most, before the cycle dispatches and commits.
    var receiveBatch = 5000
    /// Test hook: called at the end of every poll cycle.
    var cycleHook: ((Coordinator) -> Void)?
    /// Test hook: runs on the committer thread before each transaction.
    var commitGate: (@Sendable () -> Void)?
    /// Expiry only in a cycle that read the receive queue empty (tests turn it off to show the
    /// fault it prevents).
    var livenessWaitsForDrain = true
    /// Set when a liveness check found the receive queue not drained: the next cycle that drains it
    /// runs the expiry it skipped.
    private var expiryOwed = false

    // Stats and display.
    var firstDispatch: Double?
    var lastResult: Double = 0
    var roundTrips: [Double] = []
    var progressView: ProgressView
    var malformedLogged = 0

    var unknownRouteBye: [[UInt8]: Double] = [:]
    /// When the observer last got a status snapshot (`observerStatusInterval` apart).
    private var lastObserved = -Double.infinity
    static let observerStatusInterval = 0.5
    /// Every attempt's outcome, for STATUS (no store reads while serving).
    var attemptMirror = AttemptMirror()
    /// Per-job timeout in seconds (nil: none): `--job-timeout`, else the sweep's `job_timeout`.
    var jobTimeout: Double?
    /// Each train/fine-tune job's newest checkpoint (Coordinator-checkpoints.swift).
    var checkpointBook = CheckpointBook()
    /// Set on a stop signal while local workers hand back (`CoordinatorOptions.onStop`): no more dispatch.
    private var stopDeadline: Double?
    private var nextStopNote = 0.0

    public init(options: CoordinatorOptions, onSweepComplete: @escaping SweepCompletionHook = { _, _ in },
                reporter: SweepReporter? = nil) throws {
        self.options = options
        self.onSweepComplete = onSweepComplete
        self.reporter = reporter
        timing = options.timing
        workers = WorkerTable(deadAfter: options.timing.deadAfter)
        if options.serverKeys == nil && !options.insecure && !Endpoint.isLoopback(options.bind) {
            throw SweepError.invalid("--bind \(options.bind) is not a loopback address: give CURVE keys (--keys DIR) or pass --insecure")
        }
        if options.serverKeys != nil && options.allowlist.isEmpty {
            throw SweepError.invalid("CURVE is on but the allowlist of worker keys is empty")
        }
        // A new sweep that cannot bind leaves no state dir behind: try the address first.
        if !Files.exists(options.stateDir + "/" + SweepStore.fileName) { try Coordinator.checkBind(options.bind) }
        try AtomicFile.makeDirectory(options.stateDir)
        lock = try StateLock(stateDir: options.stateDir, purpose: "one coordinator per state dir; stop it first")
        store = try SweepStore(stateDir: options.stateDir)
        // An impossible row (hand-edited, or left by an older build) is one clear error here, not
        // a trap later in every restart.
        try store.validate(stateDir: options.stateDir)
        artifacts = try ArtifactStore(dir: options.stateDir + "/artifacts")
        // Uploads a previous run left unfinished: only this coordinator writes here.
        artifacts.removeTemporaryFiles()
        context = try ZMQContext()
        // Two I/O threads: with thousands of workers the TCP sends and receives (one system call per
        // message and connection) cost more than the coordinator's own work, and one I/O thread
        // caps them on one core. Set before the first socket.
        zmq_ctx_set(context.handle, ZMQ_IO_THREADS, Coordinator.ioThreads)
        progressView = ProgressView(mode: options.progress)
        try loadOrCreateSweep()
    }

    deinit { context.shutdown() }

    /// Binds `endpoint` once and lets go (the socket closes, then the context's end waits for it).
    static func checkBind(_ endpoint: String) throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .router)
        do { try socket.bind(endpoint) } catch { throw SweepError.io("cannot bind \(endpoint): \(error)") }
    }

    // MARK: sweep creation / resume

    func loadOrCreateSweep() throws {
        var planned: [PlannedJob]? = nil
        var plannedSearches: [SearchDefinition]? = nil
        if let sweep = options.sweep {
            (planned, plannedSearches) = try JobGraph.planWithSearches(sweep) { path, isDir in
                let ref = isDir ? try self.artifacts.importDirectory(path) : try self.artifacts.importFile(path)
                return ref
            }
        }
        if let existing = try store.meta("plan_hash") {
            if let planned, let sweep = options.sweep, JobPlanHash.of(planned) != existing {
                try extendSweep(planned, sweep)
            }
            Log.info("resuming the sweep in \(options.stateDir)")
        } else {
            guard let planned, let sweep = options.sweep else {
                throw SweepError.invalid("state dir \(options.stateDir) holds no sweep yet: give --sweep FILE")
            }
            guard !planned.isEmpty || !(plannedSearches ?? []).isEmpty else { throw SweepError.invalid("\(options.sweepSource) defines no jobs") }
            try store.createSweep(jobs: planned, maxAttempts: sweep.maxAttempts, planHash: JobPlanHash.of(planned),
                                  sweepJSON: "\(sweep)")
            for j in planned where j.inputs.contains(where: { $0.hash != nil }) {
                for i in j.inputs { if let h = i.hash, let s = i.size { ops.append(.artifact(hash: h, size: s, origin: "input:\(i.name)")) } }
            }
            try commit()
        }
        try resolveJobTimeout()
        identities = try store.workerIdentities()
        try loadJobs()
        try loadSearches(plannedSearches)
        try loadCheckpoints()
        try loadAttemptMirror()
    }

    /// A sweep file that differs from the state dir's sweep: keep every job it shares, add the
    /// new ones; a changed setting of an existing job is refused with what changed and which jobs
    /// it would invalidate, unless `allowChanges` (then the changed jobs are added beside the old).
    func extendSweep(_ planned: [PlannedJob], _ sweep: SweepSpec) throws {
        let existing = try store.loadJobs().map(\.job)
        let merge = PlanMerge.merge(existing: existing, planned: planned, allowChanges: options.allowChanges)
        if !merge.changes.isEmpty {
            throw SweepError.invalid(merge.refusal(stateDir: options.stateDir, source: options.sweepSource))
        }
        try store.addJobs(merge.added, maxAttempts: sweep.maxAttempts, planHash: JobPlanHash.of(planned), sweepJSON: "\(sweep)",
                          event: SweepEventKind.sweepExtended.rawValue)
        for j in merge.added {
            for i in j.inputs { if let h = i.hash, let s = i.size { ops.append(.artifact(hash: h, size: s, origin: "input:\(i.name)")) } }
        }
        if merge.added.isEmpty {
            Log.info("\(options.sweepSource) adds no job to the sweep in \(options.stateDir)")
        } else {
            Log.info("\(options.sweepSource) extends the sweep: \(merge.kept.count) job(s) kept, \(merge.added.count) new: "
                     + merge.added.map(\.id).joined(separator: ", "))
        }
    }

    /// `--job-timeout` for this run, else the sweep file's `job_timeout`. The file's value is kept in
    /// the store's meta, so resuming without the file keeps it; resuming with the file takes the file's.
    func resolveJobTimeout() throws {
        let stored = try store.meta("job_timeout").flatMap(Double.init)
        var fromSweep = stored
        if let sweep = options.sweep {
            fromSweep = sweep.jobTimeout
            if fromSweep != stored { try store.setMeta("job_timeout", fromSweep.map { String($0) }) }
        }
        jobTimeout = options.jobTimeout ?? fromSweep
        if let t = jobTimeout { Log.info("job timeout: \(Coordinator.seconds(t)) s per attempt") }
    }

    /// Rebuilds the in-memory job table from the store. Jobs that were running when an earlier
    /// coordinator died become queued; their open attempts become "orphaned" (not a failure, and
    /// a late result from one is still accepted: the job is not computed twice if we can help it).
    func loadJobs() throws {
        let stored = try store.loadJobs()
        producedArtifacts = try store.resultArtifacts()
        let open = try store.openAttempts()
        var orphaned: [String: [Int: String]] = [:]
        for (ref, worker) in try store.orphanedAttempts() { orphaned[ref.job, default: [:]][ref.attempt] = worker }
        for (ref, worker) in open {
            ops.append(.attemptEnded(ref, outcome: .orphaned, reason: "coordinator restarted while \(worker) ran it"))
            orphaned[ref.job, default: [:]][ref.attempt] = worker
        }
        let grace = options.reattachGrace ?? timing.deadAfter
        jobsFailed(try jobs.resume(stored, orphaned: orphaned, now: monotonicSeconds(), grace: grace, ops: &ops))
        try commit()
        Log.info("\(jobs.count) jobs: \(jobs.doneCount) done, \(jobs.failedCount) failed, \(jobs.count - jobs.terminalCount) to run")
    }

    // MARK: run loop

    /// Serves until the sweep completes (then calls the completion hook) or a stop signal arrives.
    public func run() throws -> SweepSummary {
        router = try ZMQSocket(context, .router)
        try router.setRouterMandatory()
        if let keys = options.serverKeys {
            try ZAPHandler.start(context: context, allowlist: options.allowlist)
            try router.makeCurveServer(keys)
        }
        // The kernel's accept queue must hold a whole allocation of workers starting at once:
        // libzmq's default (100) drops the rest's SYNs, and each dropped worker waits >= 1 s.
        try router.set(ZMQ_BACKLOG, Coordinator.listenBacklog)
        do { try router.bind(options.bind) } catch {
            throw SweepError.io("cannot bind \(options.bind): \(error)")
        }
        let endpoint = router.lastEndpoint()
        Log.info("listening on \(endpoint) (\(options.serverKeys != nil ? "CURVE, \(options.allowlist.count) allowed worker key(s)" : "plain TCP"))")
        options.onBound?(endpoint)

        // From here on the committer thread is the store's writer (GroupCommitter.swift).
        let wake = try ZMQSocket(context, .pair)
        let committer = GroupCommitter(store: store, observer: options.observer, context: context)
        try wake.bind(committer.wakeEndpoint)
        committer.beforeCommit = commitGate
        committer.start()
        committerWake = wake
        self.committer = committer
        defer {
            committer.stop()
            self.committer = nil
            committerWake = nil
        }

        var completedAt: Double? = nil
        advanceSearches()
        if jobs.allTerminal && searchesFinished { completedAt = try complete() }
        var nextLiveness = monotonicSeconds() + timing.heartbeat
        while true {
            if csupport_stop_requested() != 0, try stopping(now: monotonicSeconds()) {
                return summary(interrupted: true)
            }
            let tick = min(timing.heartbeatMs, 250)
            let readable = try ZMQPoll.readable([router, wake], timeoutMs: tick)
            if readable[1] { while let _ = try? wake.receive(dontWait: true) {} }
            var handled = 0
            // Whether this cycle read the queue empty: only then has every message a worker sent
            // before now been read, and only then may silence mean death.
            var drained = false
            while true {
                guard handled < receiveBatch else { break }
                guard let (frames, userKey) = try receiveNonBlocking() else { drained = true; break }
                handle(frames, userKey: userKey)
                handled += 1
            }
            let now = monotonicSeconds()
            if completedAt == nil && stopDeadline == nil {
                jobs.releaseHeld(now)
                advanceSearches()
                dispatch(now)
            }
            let mayExpire = drained || !livenessWaitsForDrain
            if now >= nextLiveness || (expiryOwed && mayExpire) {
                // A coordinator too busy to read its queue must not declare dead a worker whose
                // heartbeats wait in that queue: with a backlog it only sends heartbeats, and the
                // first cycle that drains the queue runs the expiry it skipped.
                checkLiveness(now, expire: mayExpire)
                if mayExpire { checkJobTimeouts(now) }
                expiryOwed = !mayExpire
                nextLiveness = now + timing.heartbeat / 2
            }
            // JOBs and heartbeats leave at once (a job dispatched but not recorded is simply queued
            // again after a crash); ACKs only once the committer reports the commit that covers
            // them, because an ACK makes the worker forget a result that must by then be durable.
            flush()
            try submitCycle()
            try releaseCommittedAcks()
            flush()
            if let observer = options.observer, now - lastObserved >= Coordinator.observerStatusInterval {
                observer.publish(status: statusSnapshot(now: now), at: wallClockSeconds())
                lastObserved = now
            }
            if completedAt == nil {
                progressView.update(now: now, jobs: jobs, workers: workers)
                if jobs.allTerminal && searchesFinished { completedAt = try complete() }
            }
            let reportPending = reporter?.cycle(now: now, finished: jobs.terminalCount, complete: completedAt != nil) ?? false
            cycleHook?(self)
            if let completedAt, now - completedAt > timing.heartbeat, !reportPending {
                // Linger one heartbeat after completion so workers hear BYE (and until the final
                // report is written, still answering STATUS), then leave.
                return summary(interrupted: false)
            }
        }
    }

    /// A stop signal arrived. First call: ask the local workers to stop (`onStop`) and wait for their
    /// handbacks, saying so; returns true once nothing is left to wait for (or the wait is over),
    /// with every worker still attached marked as such in the store and the state committed.
    func stopping(now: Double) throws -> Bool {
        let signal = csupport_stop_requested()
        if stopDeadline == nil {
            stopDeadline = now
            if !workers.isEmpty, let onStop = options.onStop {
                let told = onStop()
                if told > 0 {
                    stopDeadline = now + options.stopGrace
                    nextStopNote = now + 5
                    Log.info("stopping on signal \(signal): waiting for \(workers.count) worker(s) to hand back their jobs and checkpoints (up to \(Coordinator.seconds(options.stopGrace)) s)…")
                }
            }
        }
        if !workers.isEmpty, let deadline = stopDeadline, now < deadline {
            if now >= nextStopNote {
                Log.info("still waiting for \(workers.count) worker(s) to hand back: \(workers.sortedByID.map(\.id).joined(separator: ", "))")
                nextStopNote = now + 5
            }
            return false
        }
        for w in workers.sortedByID {
            // Not seen to leave. A local worker that did not hand back in time is gone with us: its
            // jobs are queued again. A remote one may live on and reattach (its result still counts).
            if options.onStop != nil {
                Log.warn("\(w.id) did not hand back in time: its job(s) are queued again")
                removeWorker(w.id, outcome: .handback, reason: "coordinator stopped", counts: false)
            }
            ops.append(.workerState(id: w.id, state: WorkerState.detached.rawValue))
        }
        Log.info("stopped on signal \(signal); state is saved, restart with the same --state-dir to resume")
        try commit(); flush()
        return true
    }

    /// The next message and the CURVE key its connection was admitted with (nil without CURVE).
    func receiveNonBlocking() throws -> ([[UInt8]], String?)? {
        var userKey: String?
        do {
            guard let frames = try router.receive(dontWait: true, userID: &userKey) else { return nil }
            return (frames, userKey)
        } catch let e as ZMQError where e.interrupted { return nil }
    }

    /// Everything done or failed: commit, tell the hook, say BYE to every worker.
    func complete() throws -> Double {
        try commit()
        progressView.finish(jobs: jobs, workers: workers)
        let s = summary(interrupted: false)
        Log.info("sweep complete: \(s.done) done, \(s.failed) failed of \(s.total)")
        try onSweepComplete(s, store)
        for w in workers.all {
            send(w.id, WireMessage(.bye, ByeHeader(code: .sweepComplete, reason: "sweep complete")))
            ops.append(.workerState(id: w.id, state: WorkerState.finished.rawValue))
        }
        flush()
        // They are leaving: no more heartbeats to them. Late HELLOs still get the rehello BYE path.
        workers.removeAll()
        try commit()
        return monotonicSeconds()
    }

    func summary(interrupted: Bool) -> SweepSummary {
        SweepSummary(stateDir: options.stateDir, total: jobs.count, done: jobs.doneCount, failed: jobs.failedCount, doneThisRun: jobs.doneThisRun,
                     seconds: firstDispatch.map { max(0, lastResult - $0) } ?? 0, roundTrips: roundTrips.sorted(), interrupted: interrupted)
    }

    // MARK: cycle output

    /// Hands this cycle's ops to the committer (or, before `run` serves, writes them at once), and
    /// ties the cycle's ACKs to that commit.
    func submitCycle() throws {
        ops.append(contentsOf: eventCounts.drain(wall: wallClockSeconds()))
        guard let committer else { return try commit() }
        // A failed commit stops the committer: the coordinator stops with its error (as a failed
        // commit on the poll thread did), not serving on with nothing written.
        _ = try committer.committed()
        if !ops.isEmpty {
            attemptMirror.apply(ops)
            _ = committer.submit(ops)
            ops.removeAll(keepingCapacity: true)
        }
        if !acks.isEmpty {
            // Every result these ACKs cover was recorded in this batch or an earlier one.
            pendingAcks.append((committer.lastSubmitted, acks))
            acks.removeAll(keepingCapacity: true)
        }
    }

    /// Queues the ACKs whose results the committer has reported durable.
    func releaseCommittedAcks() throws {
        guard let committer, !pendingAcks.isEmpty else { return }
        let done = try committer.committed()
        var n = 0
        while n < pendingAcks.count && pendingAcks[n].batch <= done { n += 1 }
        if n == 0 { return }
        // One ACK per worker for everything this commit covered (many cycles may have passed
        // while it ran): one message per cycle each would fill the worker's pipe (its high-water
        // mark) and the JOBs queued behind them would be dropped.
        var merged: [String: [JobRef]] = [:]
        for entry in pendingAcks[..<n] {
            for (id, refs) in entry.acks { merged[id, default: []].append(contentsOf: refs) }
        }
        pendingAcks.removeFirst(n)
        for (id, refs) in merged {
            guard workers[id] != nil else { continue }
            var start = 0
            while start < refs.count {
                let end = min(refs.count, start + Coordinator.maxRefsPerAck)
                send(id, WireMessage.ack(Array(refs[start ..< end])))
                start = end
            }
        }
    }

    static let ioThreads: Int32 = {
        if let v = ProcessInfo.processInfo.environment["RANKSWEEP_COORDINATOR_IO_THREADS"].flatMap(Int32.init), (1 ... 16).contains(v) { return v }
        return 2
    }()

    /// Refs in one ACK message at most (a worker holds up to a few per slot; after a long commit it
    /// may be owed thousands).
    static let maxRefsPerAck = 1024

    /// Commits everything recorded so far and waits for it: the store is then as the coordinator
    /// sees it (before reads of the store, and on the way out). ACKs covered are queued.
    func commit() throws {
        ops.append(contentsOf: eventCounts.drain(wall: wallClockSeconds()))
        if let committer {
            try submitCycle()
            try committer.waitIdle()
            try releaseCommittedAcks()
            return
        }
        if ops.isEmpty { return }
        try store.apply(ops)
        attemptMirror.apply(ops)
        if let observer = options.observer {
            let events = SweepEvent.of(ops)
            if !events.isEmpty { observer.publish(events) }
        }
        ops.removeAll(keepingCapacity: true)
        queueAcks()
    }

    /// Queues a message to a connected worker (none when it is gone).
    func send(_ id: String, _ m: WireMessage) {
        guard let route = workers[id]?.route else { return }
        outbox.append((route, m.frames))
        workers.sent(id, now: monotonicSeconds())
    }

    func sendTo(route: [UInt8], _ m: WireMessage) { outbox.append((route, m.frames)) }

    func flush() {
        for (route, frames) in outbox {
            do { try router.send([route] + frames, dontWait: true) } catch let e as ZMQError {
                // Gone (EHOSTUNREACH) or its queue is full (EAGAIN): liveness deals with the worker.
                // A peer that never reads fills its queue: say so now and then, not per message.
                if let id = workers.id(route: route) {
                    sendFailures += 1
                    if sendFailures <= 20 || sendFailures % 1000 == 0 { Log.warn("cannot send to \(id): \(e) (\(sendFailures) so far)") }
                }
            } catch {}
        }
        outbox.removeAll(keepingCapacity: true)
    }

    func queueAcks() {
        for (id, refs) in acks {
            send(id, WireMessage.ack(refs))
        }
        acks.removeAll(keepingCapacity: true)
    }
}

/// The identity of a planned sweep: resuming with a different sweep file is refused.
enum JobPlanHash {
    static func of(_ jobs: [PlannedJob]) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return SHA256Hasher.hex(Array((try? enc.encode(jobs)) ?? Data()))
    }
}
