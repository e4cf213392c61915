import Basics
import Foundation

/// Where a connected worker stands. A worker that is gone is no longer in the table; the store
/// keeps why (`WorkerState`: left, dead, finished, detached).
enum WorkerPhase: String, Equatable {
    /// Said HELLO, not READY yet (or handing its jobs back before it leaves): takes no job.
    case joined
    /// READY and holds no job.
    case idle
    /// READY and holds at least one job.
    case busy
}

/// One connected worker (zguide ppqueue: an explicit record with one owner and an expiry time).
/// Only `WorkerTable` changes it.
struct WorkerRecord {
    let id: String
    let host: String
    let slots: Int
    let threads: Int
    /// Which join this is: a dispatch-line entry of an earlier join of the same id is stale.
    fileprivate let generation: Int
    fileprivate(set) var route: [UInt8]
    /// The attempts it holds.
    fileprivate(set) var running = Set<JobRef>()
    fileprivate(set) var ready = false
    /// In the dispatch line.
    fileprivate(set) var offered = false
    /// Silent past this, it is declared dead.
    fileprivate(set) var expiry: Double
    fileprivate(set) var lastSent: Double = 0
    /// Latest progress line per running job, for the display.
    fileprivate(set) var progress: [String: String] = [:]
    /// Latest epoch (and epoch count) per running attempt, for status.
    fileprivate(set) var epochs: [JobRef: EpochProgress] = [:]

    var free: Int { slots - running.count }
    var phase: WorkerPhase { !ready ? .joined : running.isEmpty ? .idle : .busy }
}

/// The connected workers: who they are, their routes, liveness, the attempts each holds, and the
/// dispatch line (workers that may have a free slot, in the order they got one: zguide's LRU
/// queue, so a dispatch costs the same with 10 workers connected as with 10,000). No sockets:
/// the coordinator feeds it what workers say and does the sending.
struct WorkerTable {
    /// A worker silent this long is declared dead.
    let deadAfter: Double
    private var records: [String: WorkerRecord] = [:]
    private var idByRoute: [[UInt8]: String] = [:]
    private var line: [(id: String, generation: Int)] = []
    private var lineHead = 0
    private var joins = 0

    init(deadAfter: Double) { self.deadAfter = deadAfter }

    // MARK: reading

    var count: Int { records.count }
    var isEmpty: Bool { records.isEmpty }
    var all: Dictionary<String, WorkerRecord>.Values { records.values }
    var sortedByID: [WorkerRecord] { records.values.sorted { $0.id < $1.id } }
    subscript(id: String) -> WorkerRecord? { records[id] }
    /// The worker a connection speaks for.
    func id(route: [UInt8]) -> String? { idByRoute[route] }
    /// Free slots of READY workers.
    var freeReadySlots: Int { records.values.filter(\.ready).reduce(0) { $0 + max(0, $1.free) } }
    /// Workers silent past their expiry.
    func expired(_ now: Double) -> [String] { records.values.filter { now > $0.expiry }.map(\.id) }
    var lineHasEntries: Bool { lineHead < line.count }

    // MARK: transitions

    /// HELLO: a new worker joins, or a known one (same process, new connection) moves to `route`.
    /// Either way it is `joined` (not READY) and heard now. Returns whether it is new.
    @discardableResult
    mutating func join(id: String, route: [UInt8], host: String, slots: Int, threads: Int, now: Double) -> Bool {
        let isNew: Bool
        if var old = records[id] {
            if idByRoute[old.route] == id { idByRoute[old.route] = nil }
            old.route = route
            records[id] = old
            isNew = false
        } else {
            joins += 1
            records[id] = WorkerRecord(id: id, host: host, slots: slots, threads: threads, generation: joins, route: route,
                                       expiry: now + deadAfter)
            isNew = true
        }
        idByRoute[route] = id
        records[id]!.expiry = now + deadAfter
        records[id]!.ready = false
        return isNew
    }

    /// Changes a record in place (one lookup, and no copy of its sets and dictionaries).
    @discardableResult
    private mutating func modify<R>(_ id: String, _ body: (inout WorkerRecord) -> R) -> R? {
        guard let i = records.index(forKey: id) else { return nil }
        return body(&records.values[i])
    }

    /// Any message from the worker: it lives for another `deadAfter`.
    mutating func heard(_ id: String, now: Double) {
        let expiry = now + deadAfter
        modify(id) { $0.expiry = expiry }
    }

    mutating func setReady(_ id: String, _ ready: Bool) { modify(id) { $0.ready = ready } }

    mutating func sent(_ id: String, now: Double) { modify(id) { $0.lastSent = now } }

    /// The worker now runs this attempt.
    mutating func hold(_ id: String, _ ref: JobRef) { modify(id) { _ = $0.running.insert(ref) } }

    /// The worker no longer runs this attempt (result, failure, cancel); its display lines go.
    /// Returns whether it held it.
    @discardableResult
    mutating func release(_ id: String, _ ref: JobRef) -> Bool {
        modify(id) { w in
            w.progress[ref.job] = nil
            if !w.epochs.isEmpty { w.epochs[ref] = nil }
            return w.running.remove(ref) != nil
        } ?? false
    }

    mutating func setProgress(_ id: String, job: String, text: String) { modify(id) { $0.progress[job] = text } }

    mutating func setEpoch(_ id: String, _ ref: JobRef, _ epoch: EpochProgress) {
        modify(id) { w in
            if w.epochs.count > w.running.count + 16 { w.epochs = w.epochs.filter { w.running.contains($0.key) } }
            w.epochs[ref] = epoch
        }
    }

    /// The worker is gone (left, dead, coordinator stopping): its record, with the attempts it
    /// held, is returned; its dispatch-line entry is skipped from now on.
    mutating func remove(_ id: String) -> WorkerRecord? {
        guard let w = records.removeValue(forKey: id) else { return nil }
        if idByRoute[w.route] == id { idByRoute[w.route] = nil }
        return w
    }

    /// Every worker leaves at once (the sweep is complete).
    mutating func removeAll() {
        records.removeAll()
        idByRoute.removeAll()
    }

    // MARK: the dispatch line

    /// Puts a worker that may have a free slot at the back of the dispatch line (once).
    mutating func offer(_ id: String) {
        guard let generation = modify(id, { w -> Int? in
            guard !w.offered, w.ready, w.free > 0 else { return nil }
            w.offered = true
            return w.generation
        }) ?? nil else { return }
        line.append((id, generation))
    }

    /// Takes the front of the line: the worker, when it can still take a job (nil: the entry was
    /// of a worker gone, not ready, or full since it was offered; it is offered again when that
    /// changes).
    mutating func popOffered() -> String? {
        let (id, generation) = line[lineHead]
        lineHead += 1
        return modify(id) { w -> String? in
            guard w.generation == generation else { return nil }
            w.offered = false
            return w.ready && w.free > 0 ? id : nil
        } ?? nil
    }

    /// The worker just popped got nothing (no job dispatchable): it keeps its place at the front.
    mutating func keepPlace(_ id: String) {
        lineHead -= 1
        modify(id) { $0.offered = true }
    }

    /// Drops the line's served entries once they are most of it.
    mutating func compactLine() {
        if lineHead > 4096 && lineHead * 2 > line.count {
            line.removeFirst(lineHead)
            lineHead = 0
        }
    }
}
