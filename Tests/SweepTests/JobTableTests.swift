import XCTest
@testable import Sweep

/// The coordinator's job table driven by message sequences, without sockets or a store (as
/// swift-nio tests channel handlers on `NIOEmbedded`): each test plays what workers would say and
/// checks the states, the store ops each transition records, and the counters.
final class JobTableTests: XCTestCase {
    static func job(_ id: String, deps: [String] = []) -> PlannedJob {
        PlannedJob(id: id, kind: "noop", spec: "{}", deps: deps, inputs: [])
    }

    static func row(_ id: String, _ state: JobState, attempt: Int = 0, failures: Int = 0, maxAttempts: Int = 3,
                    deps: [String] = [], reason: String? = nil) -> SweepStore.StoredJob {
        SweepStore.StoredJob(job: job(id, deps: deps), state: state, attempt: attempt, failures: failures, maxAttempts: maxAttempts, reason: reason)
    }

    /// A table of queued jobs as a new sweep loads them.
    static func table(_ jobs: [(String, [String])], maxAttempts: Int = 3) throws -> JobTable {
        var t = JobTable()
        var ops: [SweepStore.Op] = []
        let failed = try t.resume(jobs.map { row($0.0, .queued, maxAttempts: maxAttempts, deps: $0.1) }, orphaned: [:], now: 0, grace: 0, ops: &ops)
        XCTAssertEqual(failed, [])
        XCTAssertEqual(ops.count, 0, "a new sweep's queued jobs record nothing")
        return t
    }

    /// Dispatches the next job to `worker` and returns its ref.
    static func dispatchNext(_ t: inout JobTable, to worker: String, now: Double = 0, ops: inout [SweepStore.Op]) -> JobRef? {
        guard let i = t.nextDispatchable(now) else { return nil }
        guard case .sent(let ref) = t.dispatch(i, to: worker, now: now, ops: &ops) else { XCTFail("dispatch failed"); return nil }
        return ref
    }

    static func accept(_ t: inout JobTable, _ ref: JobRef, from worker: String, ops: inout [SweepStore.Op]) -> JobTable.Acceptance {
        t.accept(ref, worker: worker, resultJSON: "{}", artifactsJSON: "{}", seconds: 1, ops: &ops)
    }

    /// The counters agree with a recount of the jobs, and each state with the job's open attempts.
    static func assertConsistent(_ t: JobTable, file: StaticString = #filePath, line: UInt = #line) {
        var recount: [JobState: Int] = [:]
        for e in t.all {
            recount[e.state, default: 0] += 1
            switch e.state {
            case .running: XCTAssertFalse(e.runningOn.isEmpty, "\(e.id) running with no open attempt", file: file, line: line)
            case .queued: XCTAssertTrue(e.runningOn.isEmpty, "\(e.id) queued with open attempts \(e.runningOn)", file: file, line: line)
            case .done, .failed: break
            }
        }
        for s in JobState.allCases { XCTAssertEqual(t.count(s), recount[s] ?? 0, "\(s) count", file: file, line: line) }
        XCTAssertEqual(t.doneCount, recount[.done] ?? 0, file: file, line: line)
        XCTAssertEqual(t.failedCount, recount[.failed] ?? 0, file: file, line: line)
        XCTAssertEqual(t.terminalCount, (recount[.done] ?? 0) + (recount[.failed] ?? 0), file: file, line: line)
        XCTAssertEqual(t.allTerminal, t.all.allSatisfy(\.terminal), file: file, line: line)
        XCTAssertLessThanOrEqual(t.doneThisRun, t.doneCount, file: file, line: line)
    }

    func testDispatchIsFirstInFirstOutAndWaitsForDependencies() throws {
        var t = try Self.table([("a", []), ("b", []), ("c", ["a"]), ("d", [])])
        var ops: [SweepStore.Op] = []
        XCTAssertEqual(t.dispatchableCount, 3, "c waits for a")
        let a = Self.dispatchNext(&t, to: "w1", ops: &ops)
        let b = Self.dispatchNext(&t, to: "w1", ops: &ops)
        let d = Self.dispatchNext(&t, to: "w2", ops: &ops)
        XCTAssertEqual([a, b, d].map { $0?.job }, ["a", "b", "d"], "in plan order, skipping the job whose dependency is not done")
        XCTAssertEqual([a, b, d].map { $0?.attempt }, [1, 1, 1])
        XCTAssertNil(t.nextDispatchable(0), "c is not dispatchable before a is done")
        XCTAssertEqual(t["c"]?.state, .queued, "a job waiting for a dependency is queued, as the store says")
        XCTAssertEqual(t.count(.running), 3)
        guard case .accepted = Self.accept(&t, a!, from: "w1", ops: &ops) else { return XCTFail("a's result dropped") }
        XCTAssertEqual(Self.dispatchNext(&t, to: "w1", ops: &ops)?.job, "c", "a done: c joins the line")
        guard case .dispatch(let ref, let worker) = ops[0] else { return XCTFail("\(ops[0])") }
        XCTAssertEqual(ref, JobRef(job: "a", attempt: 1))
        XCTAssertEqual(worker, "w1")
        Self.assertConsistent(t)
    }

    /// A worker dies holding a job: the attempt ends `dead`, counts towards max attempts, the job
    /// is queued again and its next dispatch is the next attempt number; at the limit it fails,
    /// and so do the jobs that depend on it.
    func testAWorkerDyingWithAJobRequeuesItUntilItsAttemptsAreUsedUp() throws {
        var t = try Self.table([("a", []), ("b", ["a"]), ("c", ["b"])], maxAttempts: 2)
        var workers = WorkerTable(deadAfter: 1)
        var ops: [SweepStore.Op] = []
        workers.join(id: "w1", route: [1], host: "h", slots: 1, threads: 1, now: 0)
        let first = try XCTUnwrap(Self.dispatchNext(&t, to: "w1", ops: &ops))
        workers.hold("w1", first)
        XCTAssertEqual(workers.expired(2), ["w1"], "silent for longer than deadAfter")
        let gone = try XCTUnwrap(workers.remove("w1"))
        XCTAssertEqual(gone.running, [first])
        ops.removeAll()
        XCTAssertEqual(t.endAttempt(first, outcome: .dead, reason: "silent", counts: true, ops: &ops), .requeued(worker: "w1"))
        XCTAssertEqual(t["a"]?.failures, 1)
        XCTAssertEqual(t["a"]?.state, .queued)
        guard ops.count == 2, case .attemptEnded(first, .dead, "silent") = ops[0], case .requeue("a", 1) = ops[1] else {
            return XCTFail("\(ops)")
        }
        Self.assertConsistent(t)

        let second = try XCTUnwrap(Self.dispatchNext(&t, to: "w2", ops: &ops))
        XCTAssertEqual(second, JobRef(job: "a", attempt: 2))
        XCTAssertEqual(t.endAttempt(first, outcome: .dead, reason: "again", counts: true, ops: &ops), .notOpen, "an attempt ends once")
        let end = t.endAttempt(second, outcome: .dead, reason: "silent", counts: true, ops: &ops) { n, w in "\(n) attempts, the last on \(w)" }
        guard case .failed("w2", let failed) = end else { return XCTFail("\(end)") }
        XCTAssertEqual(failed.map { t[$0].id }, ["a", "b", "c"], "the job, then what depends on it")
        XCTAssertEqual(t["a"]?.failures, 2)
        XCTAssertEqual(t["a"]?.reason, "2 attempts, the last on w2")
        XCTAssertEqual(t["b"]?.reason, "dependency a failed")
        XCTAssertEqual(t.failedCount, 3)
        XCTAssertTrue(t.allTerminal)
        XCTAssertEqual(t.fail(t.index(of: "b")!, reason: "again", ops: &ops), [], "a failed job fails once")
        Self.assertConsistent(t)
    }

    func testHandbacksAndLostAttemptsDoNotCount() throws {
        var t = try Self.table([("a", [])], maxAttempts: 1)
        var ops: [SweepStore.Op] = []
        for outcome in [AttemptOutcome.handback, .lost, .cancelled] {
            let ref = try XCTUnwrap(Self.dispatchNext(&t, to: "w1", ops: &ops))
            XCTAssertEqual(t.endAttempt(ref, outcome: outcome, reason: "", counts: false, ops: &ops), .requeued(worker: "w1"))
            XCTAssertEqual(t["a"]?.failures, 0)
        }
        let ref = try XCTUnwrap(Self.dispatchNext(&t, to: "w1", ops: &ops))
        XCTAssertEqual(ref.attempt, 4)
        XCTAssertEqual(t.endAttempt(ref, outcome: .failed, reason: "bad input", counts: true, permanent: true, ops: &ops),
                       .failed(worker: "w1", jobs: [0]))
        XCTAssertEqual(t["a"]?.reason, "input error, not retried: bad input")
        Self.assertConsistent(t)
    }

    /// First valid result wins; a result from an attempt that is no longer open, a second result,
    /// and a result for an attempt never dispatched are dropped, and change nothing.
    func testLateAndDuplicateResultsAreDropped() throws {
        var t = try Self.table([("a", []), ("b", ["a"])])
        var ops: [SweepStore.Op] = []
        let first = try XCTUnwrap(Self.dispatchNext(&t, to: "w1", ops: &ops))
        XCTAssertEqual(t.endAttempt(first, outcome: .dead, reason: "silent", counts: true, ops: &ops), .requeued(worker: "w1"))
        let second = try XCTUnwrap(Self.dispatchNext(&t, to: "w2", ops: &ops))
        XCTAssertEqual(second, JobRef(job: "a", attempt: 2))
        ops.removeAll()
        guard case .stale(let late) = Self.accept(&t, first, from: "w1", ops: &ops) else { return XCTFail("late result accepted") }
        XCTAssertEqual(late, "attempt 1 is not open on w1 (current attempt 2)")
        guard case .stale = Self.accept(&t, second, from: "w1", ops: &ops) else { return XCTFail("result from another worker accepted") }
        guard case .stale(let never) = Self.accept(&t, JobRef(job: "b", attempt: 1), from: "w1", ops: &ops) else {
            return XCTFail("a never dispatched attempt accepted")
        }
        XCTAssertEqual(never, "attempt 1 is not open on w1 (current attempt 0)")
        guard case .stale(let unknown) = Self.accept(&t, JobRef(job: "zz", attempt: 1), from: "w1", ops: &ops) else { return XCTFail() }
        XCTAssertEqual(unknown, "unknown job")
        XCTAssertEqual(ops.count, 0, "dropped results record nothing")

        guard case .accepted(_, _, let cancelled) = Self.accept(&t, second, from: "w2", ops: &ops) else { return XCTFail("result dropped") }
        XCTAssertTrue(cancelled.isEmpty)
        guard case .stale(let duplicate) = Self.accept(&t, second, from: "w2", ops: &ops) else { return XCTFail("second result accepted") }
        XCTAssertEqual(duplicate, "job already done")
        XCTAssertEqual(t.endAttempt(second, outcome: .failed, reason: "late FAILED", counts: true, ops: &ops), .notOpen)
        XCTAssertEqual(ops.count, 1, "one .done op")
        XCTAssertEqual(t.doneCount, 1)
        XCTAssertEqual(t.doneThisRun, 1)
        Self.assertConsistent(t)
    }

    /// A coordinator restarted: rows say done, failed, running (its attempt orphaned) and queued.
    /// The running job is queued again and held back for the grace period; a queued job whose
    /// dependency failed fails; the orphaned attempt's worker may reattach it or report its result.
    func testResumedStateFromTheStoreRows() throws {
        var t = JobTable()
        var ops: [SweepStore.Op] = []
        let rows = [Self.row("x", .done, attempt: 1), Self.row("y", .failed, attempt: 3, failures: 3, reason: "boom"),
                    Self.row("z", .running, attempt: 2, failures: 1), Self.row("q", .queued, deps: ["y"]),
                    Self.row("r", .queued, deps: ["x"]), Self.row("s", .queued, deps: ["z"])]
        let failed = try t.resume(rows, orphaned: ["z": [2: "w1"]], now: 100, grace: 5, ops: &ops)
        XCTAssertEqual(failed.map { t[$0].id }, ["q"])
        XCTAssertEqual(t["q"]?.reason, "dependency failed: y")
        XCTAssertEqual(t["y"]?.reason, "boom")
        guard ops.count == 2, case .requeue("z", 1) = ops[0], case .failJob("q", 0, "dependency failed: y") = ops[1] else { return XCTFail("\(ops)") }
        XCTAssertEqual([t.count(.done), t.count(.failed), t.count(.queued), t.count(.running)], [1, 2, 3, 0])
        Self.assertConsistent(t)

        XCTAssertEqual(Self.dispatchNext(&t, to: "w2", now: 101, ops: &ops)?.job, "r", "z is held back for its worker, s waits for z")
        XCTAssertNil(t.nextDispatchable(101))
        t.releaseHeld(104)
        XCTAssertNil(t.nextDispatchable(104), "still held")
        t.releaseHeld(106)
        XCTAssertEqual(Self.dispatchNext(&t, to: "w2", now: 106, ops: &ops), JobRef(job: "z", attempt: 3), "held no longer: the next attempt")

        // The orphaned attempt's worker comes back: it may reattach it, and only it.
        XCTAssertEqual(t.reattach(JobRef(job: "z", attempt: 2), worker: "w3", now: 107, ops: &ops), .stale("attempt 2 is not open on this worker"))
        XCTAssertEqual(t.reattach(JobRef(job: "z", attempt: 2), worker: "w1", now: 107, ops: &ops), .reattached)
        XCTAssertEqual(t.reattach(JobRef(job: "z", attempt: 2), worker: "w1", now: 108, ops: &ops), .ours)
        XCTAssertEqual(t.reattach(JobRef(job: "x", attempt: 1), worker: "w1", now: 108, ops: &ops), .stale("job already done"))
        XCTAssertEqual(t.reattach(JobRef(job: "nope", attempt: 1), worker: "w1", now: 108, ops: &ops), .stale("no such job"))
        XCTAssertEqual(t["z"]?.runningOn, [2: "w1", 3: "w2"])
        // Its result wins: the re-dispatched attempt is cancelled on its worker, and s may run.
        guard case .accepted(_, _, let cancelled) = Self.accept(&t, JobRef(job: "z", attempt: 2), from: "w1", ops: &ops) else {
            return XCTFail("the orphaned attempt's result dropped")
        }
        XCTAssertEqual(cancelled.map(\.ref), [JobRef(job: "z", attempt: 3)])
        XCTAssertEqual(cancelled.map(\.worker), ["w2"])
        XCTAssertEqual(Self.dispatchNext(&t, to: "w2", now: 109, ops: &ops)?.job, "s")
        XCTAssertEqual(t.doneThisRun, 1, "x was done before")
        Self.assertConsistent(t)
    }

    func testResumeRefusesAnUnknownDependency() {
        var t = JobTable()
        var ops: [SweepStore.Op] = []
        XCTAssertThrowsError(try t.resume([Self.row("a", .queued, deps: ["ghost"])], orphaned: [:], now: 0, grace: 0, ops: &ops))
    }

    func testAddedJobsJoinTheLineOrFailWithTheirDependency() throws {
        var t = try Self.table([("base", []), ("bad", [])], maxAttempts: 1)
        var ops: [SweepStore.Op] = []
        let base = try XCTUnwrap(Self.dispatchNext(&t, to: "w1", ops: &ops))
        let bad = try XCTUnwrap(Self.dispatchNext(&t, to: "w1", ops: &ops))
        XCTAssertEqual(t.endAttempt(bad, outcome: .failed, reason: "x", counts: true, ops: &ops), .failed(worker: "w1", jobs: [1]))
        XCTAssertEqual(t.add(Self.job("p1", deps: ["base"]), maxAttempts: 1, ops: &ops), [])
        XCTAssertEqual(t.add(Self.job("p2", deps: ["bad"]), maxAttempts: 1, ops: &ops).map { t[$0].id }, ["p2"])
        XCTAssertEqual(t.add(Self.job("p3", deps: ["ghost"]), maxAttempts: 1, ops: &ops).map { t[$0].id }, ["p3"])
        XCTAssertEqual(t["p3"]?.reason, "dependency failed: ghost")
        XCTAssertEqual(t.add(Self.job("p4"), maxAttempts: 1, ops: &ops), [])
        XCTAssertEqual(t.dispatchableCount, 1, "p4; p1 waits for base")
        guard case .accepted = Self.accept(&t, base, from: "w1", ops: &ops) else { return XCTFail() }
        XCTAssertEqual([Self.dispatchNext(&t, to: "w1", ops: &ops)?.job, Self.dispatchNext(&t, to: "w1", ops: &ops)?.job], ["p4", "p1"])
        Self.assertConsistent(t)
    }

    func testAnAttemptNumberThatCannotBeRaisedFailsTheJob() throws {
        var t = JobTable()
        var ops: [SweepStore.Op] = []
        _ = try t.resume([Self.row("a", .queued, attempt: Wire.maxAttempt)], orphaned: [:], now: 0, grace: 0, ops: &ops)
        let i = try XCTUnwrap(t.nextDispatchable(0))
        guard case .failed(let failed) = t.dispatch(i, to: "w1", now: 0, ops: &ops) else { return XCTFail("dispatched") }
        XCTAssertEqual(failed, [i])
        Self.assertConsistent(t)
    }

    /// Thousands of random worker messages (results, failures, deaths, handbacks, duplicates,
    /// reconnects without a job) against both tables: after each, the counters agree with a
    /// recount, every open attempt is held by the worker it is open on, and every job ends done
    /// or failed.
    func testCountersStayConsistentUnderRandomMessages() throws {
        for seed in UInt64(1) ... 20 {
            var rng = SplitMix64(seed: seed)
            var jobsIn: [(String, [String])] = []
            for k in 0 ..< 40 {
                let deps = k >= 5 && Bool.random(using: &rng) ? ["j\(Int.random(in: 0 ..< k, using: &rng))"] : []
                jobsIn.append(("j\(k)", deps))
            }
            var t = try Self.table(jobsIn, maxAttempts: 3)
            var workers = WorkerTable(deadAfter: 1)
            var ops: [SweepStore.Op] = []
            var finished: [JobRef] = []
            var nextWorker = 0
            func join() {
                nextWorker += 1
                let id = "w\(nextWorker)"
                workers.join(id: id, route: [UInt8(nextWorker & 0xff)], host: "h", slots: Int.random(in: 1 ... 3, using: &rng), threads: 1, now: 0)
                workers.setReady(id, true)
                workers.offer(id)
            }
            func end(_ ref: JobRef, _ w: String, _ outcome: AttemptOutcome, counts: Bool) {
                _ = t.endAttempt(ref, outcome: outcome, reason: "", counts: counts, ops: &ops)
            }
            for _ in 0 ..< 3 { join() }
            var steps = 0
            while !t.allTerminal {
                steps += 1
                XCTAssertLessThan(steps, 100_000, "seed \(seed): the sweep does not end")
                if steps >= 100_000 { return }
                // The coordinator's dispatch loop.
                while t.lineHasEntries && workers.lineHasEntries {
                    guard let w = workers.popOffered() else { continue }
                    guard let i = t.nextDispatchable(0) else { workers.keepPlace(w); break }
                    if case .sent(let ref) = t.dispatch(i, to: w, now: 0, ops: &ops) { workers.hold(w, ref) }
                    workers.offer(w)
                }
                if workers.isEmpty { join(); continue }
                let ids = workers.sortedByID.map(\.id)
                let w = ids[Int.random(in: 0 ..< ids.count, using: &rng)]
                let held = workers[w]!.running.sorted { ($0.job, $0.attempt) < ($1.job, $1.attempt) }
                switch Int.random(in: 0 ..< 10, using: &rng) {
                case 0 ..< 5 where !held.isEmpty:
                    let ref = held[Int.random(in: 0 ..< held.count, using: &rng)]
                    workers.release(w, ref)
                    if case .accepted = Self.accept(&t, ref, from: w, ops: &ops) { finished.append(ref) }
                case 5 where !held.isEmpty:
                    let ref = held[0]
                    workers.release(w, ref)
                    end(ref, w, .failed, counts: true)
                case 6:
                    // Dies: its attempts count.
                    for ref in workers.remove(w)!.running { end(ref, w, .dead, counts: true) }
                    join()
                case 7 where !held.isEmpty:
                    // Reconnects without one of its attempts: lost, requeued, not its fault.
                    workers.release(w, held[0])
                    end(held[0], w, .lost, counts: false)
                case 8 where !finished.isEmpty:
                    // A late duplicate of a result already accepted.
                    guard case .stale = Self.accept(&t, finished[Int.random(in: 0 ..< finished.count, using: &rng)], from: w, ops: &ops) else {
                        return XCTFail("seed \(seed): a duplicate result accepted")
                    }
                default:
                    workers.offer(w)
                }
                workers.offer(w)
                Self.assertConsistent(t)
                for e in t.all {
                    for (a, holder) in e.runningOn {
                        XCTAssertTrue(workers[holder]?.running.contains(JobRef(job: e.id, attempt: a)) ?? false,
                                      "seed \(seed): \(e.id) attempt \(a) open on \(holder), which does not hold it")
                    }
                }
            }
            XCTAssertEqual(t.doneCount + t.failedCount, 40)
            XCTAssertEqual(t.doneThisRun, t.doneCount)
            XCTAssertEqual(Set(finished.map(\.job)).count, finished.count, "seed \(seed): one accepted result per job")
        }
    }
}
