import Basics
import Foundation
import Synchronization

/// The engine's own threads for `Parallel.forEach`: persistent workers that spin for a short while
/// after each piece of work before they sleep, so that the next layer's fork reaches a thread that
/// is already running instead of waking one (as oneDNN's and Eigen's pools do). The calling thread
/// takes part; iteration `i` always runs on the same participant (`i % participants`), so a
/// split behaves like the one-part-per-thread split it replaces.
///
/// Why: with `DispatchQueue.concurrentPerform` a fork costs a futex wake of a sleeping worker,
/// and under load the caller often ran both halves itself before the worker started.
/// `RANKSWEEP_POOL=dispatch` goes back to `concurrentPerform`, for measurements.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Whether `Parallel.forEach` uses the pool (else `concurrentPerform`); decided once per process.
    static let enabled = ProcessInfo.processInfo.environment["RANKSWEEP_POOL"] != "dispatch"

    /// How long an idle worker spins before it sleeps: longer than the gaps between one layer's
    /// parallel parts and the next, short enough to cost little when the engine goes idle.
    private static let spinSeconds = 200e-6

    /// The current job in one word, so that a worker never mixes two jobs' fields: its number
    /// (bits 24 and up), participants (bits 16-23) and iterations (bits 0-15). Workers wait for it
    /// to change.
    private let job = Atomic<Int>(0)
    /// The job's body, written before `job` (release) and read only by its participants, which the
    /// caller waits for before it writes the next one.
    private var body: ((Int) -> Void)?
    /// Per worker: the last generation it finished (worker k at index k - 1).
    private let finished: [FinishedJob]
    private let sleepers = Atomic<Int>(0)
    /// Set while the caller sleeps waiting for a helper's report.
    private let callerWaiting = Atomic<Bool>(false)
    private let lock = NSCondition()
    /// Serialises callers (the engine forks from one thread at a time; this keeps a second caller safe).
    private let callers = NSLock()
    private let workerLimit = 63

    private static func pack(number: Int, participants: Int, iterations: Int) -> Int {
        number << 24 | participants << 16 | iterations
    }
    private init() {
        finished = (0..<workerLimit).map { _ in FinishedJob() }
    }

    private var started = 0

    /// Runs `body(0..<count)`, iteration i on participant i % participants, and returns when all
    /// have finished.
    func run(_ count: Int, _ body: (Int) -> Void) {
        precondition(count > 1 && count < 1 << 16, "WorkerPool: \(count) iterations")
        callers.lock()
        defer { callers.unlock() }
        let helpers = min(count - 1, workerLimit)
        while started < helpers {
            started += 1
            // The job before this call's: a worker started now must not take this call's job
            // for one it has already seen.
            let (index, before) = (started, job.load(ordering: .relaxed))
            let thread = Thread { [unowned self] in self.workerLoop(index, seen: before) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        let people = helpers + 1
        withoutActuallyEscaping(body) { escaping in
            self.body = escaping
            let number = (job.load(ordering: .relaxed) >> 24) + 1
            let word = Self.pack(number: number, participants: people, iterations: count)
            job.store(word, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                lock.lock(); lock.broadcast(); lock.unlock()
            }
            var i = 0
            while i < count { escaping(i); i += people }
            // Wait for the helpers: spin, then sleep until the last one reports (a helper the
            // scheduler holds back must not cost this thread's CPU time too).
            let start = monotonicSeconds()
            var spins = 0
            for k in 1..<people {
                while finished[k - 1].word.load(ordering: .acquiring) != word {
                    spins += 1
                    guard spins & 63 == 0, monotonicSeconds() - start > Self.spinSeconds else { continue }
                    lock.lock()
                    callerWaiting.store(true, ordering: .sequentiallyConsistent)
                    while finished[k - 1].word.load(ordering: .sequentiallyConsistent) != word { lock.wait() }
                    callerWaiting.store(false, ordering: .sequentiallyConsistent)
                    lock.unlock()
                }
            }
            self.body = nil
        }
    }

    /// A participant's iterations. Its own function so that its reference to the body is gone
    /// when it returns: the caller's `withoutActuallyEscaping` checks that none is left.
    @inline(never)
    private func runShare(_ index: Int, of people: Int, _ count: Int) {
        guard let body else { return }
        var i = index
        while i < count { body(i); i += people }
    }

    private func workerLoop(_ index: Int, seen before: Int) {
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
            let (people, count) = (current >> 16 & 0xff, current & 0xffff)
            guard index < people else { continue }
            runShare(index, of: people, count)
            finished[index - 1].word.store(current, ordering: .sequentiallyConsistent)
            if callerWaiting.load(ordering: .sequentiallyConsistent) { lock.lock(); lock.broadcast(); lock.unlock() }
        }
    }
}

/// The last job a worker finished (its job word).
private final class FinishedJob: Sendable {
    let word = Atomic<Int>(0)
}
