import Basics
import Foundation
import Synchronization

/// The engine's own threads for `Parallel.forEach`: persistent workers that spin for a short while
/// after each piece of work before they sleep, so that the next layer's fork reaches a thread that
/// is already running instead of waking one (as oneDNN's and Eigen's pools do). The calling thread
/// takes part, and iterations are claimed one at a time by whichever thread is running: when the
/// scheduler holds a worker back, the caller runs the iterations itself instead of waiting. Which
/// thread runs an iteration does not change its result (each works on its own part), so results
/// stay bit-identical.
///
/// Why: with `DispatchQueue.concurrentPerform` a fork costs a futex wake of a sleeping worker.
/// `RANKSWEEP_POOL=dispatch` goes back to `concurrentPerform`, for measurements.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Whether `Parallel.forEach` uses the pool (else `concurrentPerform`); decided once per process.
    static let enabled = ProcessInfo.processInfo.environment["RANKSWEEP_POOL"] != "dispatch"

    /// How long an idle thread spins before it sleeps: longer than the gaps between one layer's
    /// parallel parts and the next, short enough to cost little when the engine goes idle.
    private static let spinSeconds = 200e-6

    /// The current job's number (bits 16 and up) and its iteration count (bits 0-15). Workers
    /// wait for it to change.
    private let job = Atomic<Int>(0)
    /// The next unclaimed iteration, tagged with its job's number (bits 16 and up), so that a
    /// worker still holding an old job's number cannot claim from the next job.
    private let next = Atomic<Int>(0)
    /// Iterations finished, tagged the same way.
    private let done = Atomic<Int>(0)
    /// The job's body: written before `job` and read only by a thread that claimed one of its
    /// iterations, which the caller waits for before it writes the next one.
    private var body: ((Int) -> Void)?
    private let sleepers = Atomic<Int>(0)
    /// Set while the caller sleeps waiting for the last iterations.
    private let callerWaiting = Atomic<Bool>(false)
    private let lock = NSCondition()
    /// Held while a job runs. The engine forks from one thread at a time; a second caller, or a
    /// fork nested inside a job's body, finds it taken and runs its iterations itself.
    private let callers = NSLock()
    private let workerLimit = 63
    private var started = 0

    private init() {}

    /// Runs `body(0..<count)` across the caller and up to `count - 1` workers; returns when all
    /// iterations have finished.
    func run(_ count: Int, _ body: (Int) -> Void) {
        precondition(count > 1 && count < 1 << 16, "WorkerPool: \(count) iterations")
        guard callers.try() else {
            for i in 0..<count { body(i) }
            return
        }
        defer { callers.unlock() }
        while started < min(count - 1, workerLimit) {
            started += 1
            // The job before this call's: a worker started now must not take this call's job
            // for one it has already seen.
            let before = job.load(ordering: .relaxed)
            let thread = Thread { [unowned self] in self.workerLoop(seen: before) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        withoutActuallyEscaping(body) { escaping in
            self.body = escaping
            let number = (job.load(ordering: .relaxed) >> 16) + 1
            next.store(number << 16, ordering: .relaxed)
            done.store(number << 16, ordering: .relaxed)
            job.store(number << 16 | count, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                lock.lock(); lock.broadcast(); lock.unlock()
            }
            let ran = runClaimed(number: number, count: count)
            let finished = number << 16 | count
            if ran > 0 && done.add(ran, ordering: .sequentiallyConsistent).newValue == finished {
                self.body = nil
                return
            }
            // Wait for the iterations the workers claimed: spin, then sleep until the last is
            // reported (a worker the scheduler holds back must not cost this thread's CPU too).
            let start = monotonicSeconds()
            var spins = 0
            while done.load(ordering: .acquiring) != finished {
                spins += 1
                guard spins & 63 == 0, monotonicSeconds() - start > Self.spinSeconds else { continue }
                lock.lock()
                callerWaiting.store(true, ordering: .sequentiallyConsistent)
                while done.load(ordering: .sequentiallyConsistent) != finished { lock.wait() }
                callerWaiting.store(false, ordering: .sequentiallyConsistent)
                lock.unlock()
            }
            self.body = nil
        }
    }

    /// Claims and runs iterations of job `number` until none are left; returns how many it ran.
    /// Its own function so that its reference to the body is gone when it returns: the caller's
    /// `withoutActuallyEscaping` checks that none is left, and counts them done only after.
    @inline(never)
    private func runClaimed(number: Int, count: Int) -> Int {
        var ran = 0
        var claim = next.load(ordering: .relaxed)
        while claim >> 16 == number, claim & 0xffff < count {
            let (exchanged, original) = next.compareExchange(expected: claim, desired: claim + 1, ordering: .acquiring)
            guard exchanged else { claim = original; continue }
            guard let body else { break }
            body(claim & 0xffff)
            ran += 1
            claim = next.load(ordering: .relaxed)
        }
        return ran
    }

    private func workerLoop(seen before: Int) {
        var seen = before
        while true {
            // Wait for the next job: spin, then sleep.
            let start = monotonicSeconds()
            var spins = 0
            var current = job.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins & 63 == 0, monotonicSeconds() - start > Self.spinSeconds {
                    lock.lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while job.load(ordering: .sequentiallyConsistent) == seen { lock.wait() }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    lock.unlock()
                }
                current = job.load(ordering: .acquiring)
            }
            seen = current
            let ran = runClaimed(number: current >> 16, count: current & 0xffff)
            guard ran > 0 else { continue }
            done.add(ran, ordering: .sequentiallyConsistent)
            if callerWaiting.load(ordering: .sequentiallyConsistent) { lock.lock(); lock.broadcast(); lock.unlock() }
        }
    }
}
