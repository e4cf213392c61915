import XCTest
@testable import Sweep

/// The coordinator's worker table driven by what workers would say, without sockets: phases,
/// liveness, the attempts each holds, reconnects, and the dispatch line.
final class WorkerTableTests: XCTestCase {
    func testPhasesFollowHelloReadyJobsAndHandback() {
        var t = WorkerTable(deadAfter: 3)
        XCTAssertTrue(t.join(id: "w1", route: [1], host: "h", slots: 2, threads: 4, now: 0))
        XCTAssertEqual(t["w1"]?.phase, .joined)
        t.setReady("w1", true)
        XCTAssertEqual(t["w1"]?.phase, .idle)
        let a = JobRef(job: "a", attempt: 1), b = JobRef(job: "b", attempt: 1)
        t.hold("w1", a)
        t.hold("w1", b)
        XCTAssertEqual(t["w1"]?.phase, .busy)
        XCTAssertEqual(t["w1"]?.free, 0)
        t.setProgress("w1", job: "a", text: "epoch 1/3")
        t.setEpoch("w1", a, EpochProgress(epoch: 1, epochs: 3))
        XCTAssertTrue(t.release("w1", a))
        XCTAssertFalse(t.release("w1", a), "released once")
        XCTAssertNil(t["w1"]?.progress["a"], "its display lines go with it")
        XCTAssertNil(t["w1"]?.epochs[a])
        XCTAssertEqual(t["w1"]?.running, [b])
        // Handing back (it is stopping): no more jobs, though it still holds one.
        t.setReady("w1", false)
        XCTAssertEqual(t["w1"]?.phase, .joined)
        t.release("w1", b)
        t.setReady("w1", true)
        XCTAssertEqual(t["w1"]?.phase, .idle)
        XCTAssertEqual(t.freeReadySlots, 2)
    }

    func testLivenessCountsFromTheLastMessage() {
        var t = WorkerTable(deadAfter: 3)
        t.join(id: "w1", route: [1], host: "h", slots: 1, threads: 1, now: 0)
        t.join(id: "w2", route: [2], host: "h", slots: 1, threads: 1, now: 0)
        XCTAssertEqual(t.expired(3), [], "not past the limit")
        t.heard("w2", now: 2)
        XCTAssertEqual(t.expired(3.5), ["w1"])
        XCTAssertEqual(t.expired(5.5).sorted(), ["w1", "w2"])
        let gone = t.remove("w1")
        XCTAssertEqual(gone?.id, "w1")
        XCTAssertNil(t.id(route: [1]), "its route speaks for nobody now")
        XCTAssertNil(t.remove("w1"), "removed once")
        XCTAssertEqual(t.count, 1)
    }

    /// Same worker process, new connection: its record (and the attempts it holds) stay, the route
    /// moves, it is `joined` again until READY, and heard now.
    func testAReconnectMovesTheRouteAndKeepsTheRecord() {
        var t = WorkerTable(deadAfter: 3)
        t.join(id: "w1", route: [1], host: "h", slots: 2, threads: 1, now: 0)
        t.setReady("w1", true)
        t.hold("w1", JobRef(job: "a", attempt: 1))
        XCTAssertFalse(t.join(id: "w1", route: [9], host: "other", slots: 5, threads: 1, now: 10))
        XCTAssertNil(t.id(route: [1]))
        XCTAssertEqual(t.id(route: [9]), "w1")
        XCTAssertEqual(t["w1"]?.running, [JobRef(job: "a", attempt: 1)])
        XCTAssertEqual(t["w1"]?.slots, 2, "the first HELLO's slots")
        XCTAssertEqual(t["w1"]?.phase, .joined)
        XCTAssertEqual(t.expired(12), [])
        XCTAssertEqual(t.count, 1)
    }

    /// The line serves workers in the order they got a free slot, one job per turn; a worker is in
    /// it once; entries of workers gone, not ready or full are skipped, and a worker that comes back
    /// under the same id is not served twice for its old entry.
    func testTheDispatchLineIsLeastRecentlyServedFirst() {
        var t = WorkerTable(deadAfter: 3)
        for (id, slots) in [("w1", 2), ("w2", 1), ("w3", 1)] {
            t.join(id: id, route: Array(id.utf8), host: "h", slots: slots, threads: 1, now: 0)
        }
        t.offer("w1")
        XCTAssertFalse(t.lineHasEntries, "not READY: not offered")
        for id in ["w1", "w2", "w3"] { t.setReady(id, true); t.offer(id); t.offer(id) }
        var served: [String] = []
        var jobs = 0
        func serve() {
            while t.lineHasEntries {
                guard let w = t.popOffered() else { continue }
                served.append(w)
                jobs += 1
                t.hold(w, JobRef(job: "j\(jobs)", attempt: 1))
                t.offer(w)  // to the back, if it has a free slot left
            }
        }
        serve()
        XCTAssertEqual(served, ["w1", "w2", "w3", "w1"], "one job per turn; w1's second slot after the others")
        XCTAssertEqual(t.freeReadySlots, 0)

        // w2 finishes and then dies; w3 finishes; w2 joins again under the same id.
        t.release("w2", JobRef(job: "j2", attempt: 1))
        t.offer("w2")
        t.release("w3", JobRef(job: "j3", attempt: 1))
        t.offer("w3")
        _ = t.remove("w2")
        t.join(id: "w2", route: [7], host: "h", slots: 1, threads: 1, now: 1)
        t.setReady("w2", true)
        t.offer("w2")
        served = []
        serve()
        XCTAssertEqual(served, ["w3", "w2"], "the old w2 entry is skipped, the new one served once")

        // No job for the front worker: it keeps its place.
        t.release("w3", JobRef(job: "j5", attempt: 1))
        t.offer("w3")
        t.release("w2", JobRef(job: "j6", attempt: 1))
        t.offer("w2")
        XCTAssertEqual(t.popOffered(), "w3")
        t.keepPlace("w3")
        XCTAssertEqual(t.popOffered(), "w3", "still first")
        XCTAssertEqual(t.popOffered(), "w2")
        XCTAssertFalse(t.lineHasEntries)
    }
}
