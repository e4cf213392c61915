import Dispatch
import Synchronization
import XCTest
@testable import Engine

/// The engine's worker pool: every iteration of every fork runs exactly once, forks nested in a
/// job's body and forks from two threads at once finish (run inline) instead of deadlocking.
final class WorkerPoolTests: XCTestCase {
    func testEveryIterationRunsOnceOverManyForks() {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        defer { counts.deallocate() }
        let slots = SendablePointer(counts)
        for round in 0..<3_000 {
            let n = 2 + round % 3
            counts.initialize(repeating: 0, count: 4)
            Parallel.forEach(n) { i in slots.pointer[i] += 1 }
            XCTAssertEqual((0..<n).map { counts[$0] }, [Int](repeating: 1, count: n), "fork \(round)")
            if (0..<n).contains(where: { counts[$0] != 1 }) { return }
        }
    }

    func testNestedForkRunsInline() {
        let total = Atomic<Int>(0)
        Parallel.forEach(2) { i in
            Parallel.forEach(3) { j in total.add(10 * (i + 1) + j, ordering: .relaxed) }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), (10 + 0) + (10 + 1) + (10 + 2) + (20 + 0) + (20 + 1) + (20 + 2))
    }

    func testForksFromTwoThreadsAtOnce() {
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            for _ in 0..<500 { Parallel.forEach(2) { i in total.add(i + 1, ordering: .relaxed) } }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 2 * 500 * 3)
    }
}
