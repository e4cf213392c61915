import Basics
import CZeroMQ
import Foundation

/// Commits the coordinator's store ops on a thread of its own, so SQLite is off the dispatch path.
///
/// While the coordinator serves, this thread is the one writer of the store: the poll thread hands
/// it each cycle's ops (`submit`, a lock-protected queue) and goes on dispatching; the committer
/// takes everything queued since its last commit and applies it in one transaction (a group
/// commit that grows with the load, with no timer), then tells the poll thread which batch the
/// commit covered (`committed`) and wakes it through an inproc PAIR. The poll thread sends a DONE's
/// ACK only once the commit covering that DONE is reported, so nothing a worker has been told to
/// forget can be lost: a crash before that commit leaves the worker holding the result, and it
/// resends it to the next coordinator.
///
/// Ownership: the store and the queue are touched by the committer thread only, except under the
/// lock (the queue) or while the committer is idle (`waitIdle`, then the poll thread may read the
/// store). Each side owns its own PAIR socket: the poll thread binds, the committer connects from
/// its own thread.
final class GroupCommitter: @unchecked Sendable {
    private let store: SweepStore
    private let observer: (any SweepObserver)?
    private let context: ZMQContext
    /// The inproc endpoint the poll thread's PAIR is bound to.
    let wakeEndpoint: String

    private let cond = NSCondition()
    private var queue: [SweepStore.Op] = []
    private var submitted = 0
    private var committedSeq = 0
    private var failure: (any Error)?
    private var stopping = false
    private var exited = false
    private var started = false
    /// Set by `waitIdle`/`stop`: commit what is queued now, without waiting out the window.
    private var urgent = false
    private var lastCommit = -Double.infinity
    /// A commit waits until this long after the previous one, gathering what the poll thread
    /// queues meanwhile: each commit writes its pages to the WAL once, so with one job outstanding
    /// per worker committing every cycle (about one result) cost far more than the results did.
    /// The poll thread is never held by it (only ACKs wait, up to this much longer).
    static let window = 0.002
    /// Test hook: runs on the committer thread before each transaction (a test holds it to see
    /// that nothing is ACKed before the commit).
    var beforeCommit: (@Sendable () -> Void)?
    /// Fault injection for tests (`RANKSWEEP_FAULT_COMMIT`): exit abruptly before or after the
    /// transaction that holds the Nth accepted result.
    private let fault = CommitFault.fromEnvironment()
    private var doneOps = 0

    init(store: SweepStore, observer: (any SweepObserver)?, context: ZMQContext) {
        self.store = store
        self.observer = observer
        self.context = context
        wakeEndpoint = "inproc://ranksweep-committer-\(UInt64.random(in: 0 ... .max))"
    }

    /// Starts the thread (call after binding the PAIR at `wakeEndpoint`).
    func start() {
        cond.lock(); started = true; cond.unlock()
        let t = Thread { [self] in self.loop() }
        t.name = "committer"
        t.start()
    }

    /// Queues one cycle's ops; returns the batch number to wait for (`committed() >= it`).
    func submit(_ ops: [SweepStore.Op]) -> Int {
        cond.lock()
        defer { cond.unlock() }
        queue.append(contentsOf: ops)
        submitted += 1
        cond.broadcast()
        return submitted
    }

    /// The last batch number submitted (0: none yet).
    var lastSubmitted: Int {
        cond.lock(); defer { cond.unlock() }
        return submitted
    }

    /// The last batch number durably committed. Throws the commit error once one happened (the
    /// committer then stops committing: later batches may depend on the failed one).
    func committed() throws -> Int {
        cond.lock(); defer { cond.unlock() }
        if let failure { throw failure }
        return committedSeq
    }

    /// Blocks until every submitted batch is committed (or a commit failed: then throws).
    func waitIdle() throws {
        cond.lock(); defer { cond.unlock() }
        if committedSeq < submitted { urgent = true; cond.broadcast() }
        while committedSeq < submitted && failure == nil && !exited { cond.wait() }
        if let failure { throw failure }
    }

    /// Commits what is queued, then ends the thread and waits for it.
    func stop() {
        cond.lock()
        guard started else { cond.unlock(); return }
        stopping = true
        cond.broadcast()
        while !exited { cond.wait() }
        cond.unlock()
    }

    private func loop() {
        // The committer's own end of the wake-up pair: created, used and closed on this thread.
        let wake: ZMQSocket?
        do {
            let s = try ZMQSocket(context, .pair)
            try s.connect(wakeEndpoint)
            wake = s
        } catch {
            Log.warn("committer: no wake-up socket (\(error)); the coordinator will notice commits on its tick")
            wake = nil
        }
        var batch: [SweepStore.Op] = []
        while true {
            cond.lock()
            while queue.isEmpty && !stopping { cond.wait() }
            while !stopping && !urgent {
                let wait = lastCommit + GroupCommitter.window - monotonicSeconds()
                if wait <= 0 { break }
                _ = cond.wait(until: Date(timeIntervalSinceNow: wait))
            }
            urgent = false
            if queue.isEmpty && stopping {
                exited = true
                cond.broadcast()
                cond.unlock()
                break
            }
            swap(&batch, &queue)
            let covers = submitted
            cond.unlock()

            lastCommit = monotonicSeconds()
            beforeCommit?()
            var crashAfter = false
            if let fault {
                let dones = batch.reduce(0) { if case .done = $1 { return $0 + 1 }; return $0 }
                if doneOps < fault.atDone && doneOps + dones >= fault.atDone {
                    if fault.before {
                        Log.warn("fault commit=before-done:\(fault.atDone): exiting before the commit")
                        _exit(137)
                    }
                    crashAfter = true
                }
                doneOps += dones
            }
            do {
                try store.apply(batch)
            } catch {
                Log.error("cannot commit the sweep state: \(error)")
                cond.lock()
                failure = error
                exited = true
                cond.broadcast()
                cond.unlock()
                _ = try? wake?.send([[]], dontWait: true)
                break
            }
            if crashAfter {
                Log.warn("fault commit=after-done:\(fault!.atDone): exiting after the commit, before any ACK")
                _exit(137)
            }
            if let observer {
                // Published once durable, so an observer never shows what could be lost.
                let events = SweepEvent.of(batch)
                if !events.isEmpty { observer.publish(events) }
            }
            batch.removeAll(keepingCapacity: true)
            cond.lock()
            committedSeq = covers
            cond.broadcast()
            cond.unlock()
            // One pending wake-up is enough: a full pipe (EAGAIN) means the poll thread has one.
            _ = try? wake?.send([[]], dontWait: true)
        }
    }
}

/// `RANKSWEEP_FAULT_COMMIT=before-done:N` or `after-done:N`: the coordinator exits abruptly
/// (status 137) just before, or just after, the transaction that holds its Nth accepted result.
/// For crash tests only.
struct CommitFault: Sendable {
    var before: Bool
    var atDone: Int

    static func fromEnvironment() -> CommitFault? {
        guard let v = ProcessInfo.processInfo.environment["RANKSWEEP_FAULT_COMMIT"] else { return nil }
        return parse(v)
    }

    static func parse(_ v: String) -> CommitFault? {
        let parts = v.split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]), n >= 1, n <= 1 << 30 else { return nil }
        switch parts[0] {
        case "before-done": return CommitFault(before: true, atDone: n)
        case "after-done": return CommitFault(before: false, atDone: n)
        default: return nil
        }
    }
}
