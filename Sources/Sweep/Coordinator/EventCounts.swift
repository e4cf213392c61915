import Foundation

/// Dropped and refused messages, counted per peer, kind and minute instead of one events row each:
/// a flood of any size adds at most one row per peer, kind and minute (the count and the first
/// example). Rows are written with the cycle's commit (`drain`), updated in place as counts grow.
struct EventCounts {
    struct Key: Hashable {
        let kind: String
        let peer: String
    }

    struct Window {
        var minute: Int
        var time: Double
        var count: Int
        var job: String?
        var attempt: Int?
        var detail: String
        var dirty: Bool
    }

    private var windows: [Key: Window] = [:]
    /// Windows that closed with counts not yet written.
    private var closed: [SweepStore.Op] = []

    /// Counts one message; true when it opened a new window (its detail is the example kept).
    mutating func note(kind: String, peer: String, job: String?, attempt: Int?, detail: String, wall: Double) -> Bool {
        let minute = Int(wall / 60)
        let key = Key(kind: kind, peer: peer)
        if var w = windows[key], w.minute == minute {
            w.count += 1
            w.dirty = true
            windows[key] = w
            return false
        }
        if let old = windows[key], old.dirty { closed.append(op(key, old)) }
        windows[key] = Window(minute: minute, time: wall, count: 1, job: job, attempt: attempt, detail: String(detail.prefix(500)), dirty: true)
        return true
    }

    /// Ops writing every count that changed since the last call; forgets windows older than a minute.
    mutating func drain(wall: Double) -> [SweepStore.Op] {
        var out = closed
        closed.removeAll()
        let minute = Int(wall / 60)
        for (key, w) in windows {
            if w.dirty {
                out.append(op(key, w))
                windows[key]?.dirty = false
            } else if w.minute < minute - 1 {
                windows[key] = nil
            }
        }
        return out
    }

    private func op(_ key: Key, _ w: Window) -> SweepStore.Op {
        .countedEvent(kind: key.kind, peer: key.peer, bucket: "\(key.kind)|\(key.peer)|\(w.minute)", time: w.time,
                      job: w.job, attempt: w.attempt, detail: w.detail, count: w.count)
    }
}
