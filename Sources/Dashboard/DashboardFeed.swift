import Foundation
import Sweep

/// The one thing the coordinator thread and the HTTP side share: a bounded queue of committed
/// events plus the newest status snapshot. The coordinator only appends under a lock and leaves;
/// the dashboard drains it a few times a second. Past `capacity` events the queue is dropped and
/// marked overflowed (the model then reloads from the store), so memory stays bounded whatever
/// the HTTP side does.
public final class DashboardFeed: SweepObserver, @unchecked Sendable {
    public let capacity: Int
    private let lock = NSLock()
    private var events: [SweepEvent] = []
    private var status: (SweepStatus, Double)?
    private var overflowed = false
    private var dropped = 0

    public init(capacity: Int = 100_000) { self.capacity = capacity }

    public func publish(_ new: [SweepEvent]) {
        lock.lock(); defer { lock.unlock() }
        if events.count + new.count > capacity {
            dropped += events.count + new.count
            events.removeAll(keepingCapacity: false)
            overflowed = true
            return
        }
        events.append(contentsOf: new)
    }

    public func publish(status: SweepStatus, at time: Double) {
        lock.lock(); defer { lock.unlock() }
        self.status = (status, time)
    }

    /// What arrived since the last drain.
    struct Batch: Sendable {
        var events: [SweepEvent]
        var status: (SweepStatus, Double)?
        var overflowed: Bool
    }

    func drain() -> Batch {
        lock.lock(); defer { lock.unlock() }
        let b = Batch(events: events, status: status, overflowed: overflowed)
        events = []
        status = nil
        overflowed = false
        return b
    }

    /// Events dropped by overflow so far (for tests and the log).
    public var droppedEvents: Int { lock.lock(); defer { lock.unlock() }; return dropped }
}
