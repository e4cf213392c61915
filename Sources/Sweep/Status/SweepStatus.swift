import Foundation

/// What `ranksweep status` shows, from either source: the state dir (`SweepStatus.load(store:)`,
/// read-only SQLite) or a running coordinator (`Coordinator.statusSnapshot()`, sent as the
/// STATUS-REPLY payload). One model, one renderer (`render`), so both print the same way.
///
/// Job states are `JobState`'s raw values (the wire carries them as JSON keys); attempt outcomes
/// are `AttemptOutcome`'s, with `running` for open attempts.
public struct SweepStatus: Codable, Sendable, Equatable {
    /// `Wire.statusSchema` of the sender.
    public var schema = Wire.statusSchema
    public var total = 0
    /// Job state -> count (states with no job are absent).
    public var jobs: [String: Int] = [:]
    public var workers: [WorkerStatus] = []
    /// Attempt outcome -> count.
    public var attempts: [String: Int] = [:]
    /// Finished jobs per second so far (nil until there is a rate).
    public var rate: Double?
    /// The first failed jobs (at most `failedShown`), with their reasons.
    public var failedJobs: [FailedJob] = []
    /// Each targeted search's answer so far, as the report states it (nil: the sweep has none).
    public var searches: [String]? = nil

    public static let failedShown = 20

    public struct WorkerStatus: Codable, Sendable, Equatable {
        public var id: String
        public var host: String
        /// alive | dead | left | finished | detached
        public var state: String
        public var slots: Int
        /// Seconds since the coordinator last heard from it.
        public var seenAgo: Double
        public var running: [RunningJob]
    }

    public struct RunningJob: Codable, Sendable, Equatable {
        public var job: String
        public var attempt: Int
        public var epoch: Int?
        public var epochs: Int?
    }

    public struct FailedJob: Codable, Sendable, Equatable {
        public var job: String
        public var reason: String
    }

    public init() {}

    public func count(_ state: JobState) -> Int { jobs[state.rawValue] ?? 0 }

    /// Jobs neither done nor failed.
    public var left: Int { total - count(.done) - count(.failed) }

    /// Seconds left at the rate so far (nil without a rate, or when nothing is left).
    public var etaSeconds: Double? {
        guard let rate, rate > 0, count(.done) > 0, left > 0 else { return nil }
        return Double(left) / rate
    }

    /// `status --json`: the same content as `render`, for scripts. The snapshot's fields plus
    /// `source`, `left`, `complete` and `etaSeconds`; keys sorted, so the output is stable.
    public func json(source: String) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        var object = try JSONSerialization.jsonObject(with: try encoder.encode(self)) as? [String: Any] ?? [:]
        object["source"] = source
        object["left"] = left
        object["complete"] = left == 0
        object["etaSeconds"] = etaSeconds.map { ($0 * 10).rounded() / 10 } ?? NSNull()
        if rate == nil { object["rate"] = NSNull() }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: rendering (the one renderer)

    /// The lines `ranksweep status` prints. `source` says where they come from ("in DIR",
    /// "at tcp://HOST:PORT").
    public func render(source: String) -> String {
        var out: [String] = []
        let states = jobs.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        out.append("sweep \(source): \(total) jobs — " + states.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        if !workers.isEmpty { out.append("workers:") }
        for w in workers.sorted(by: { $0.id < $1.id }) {
            let running = w.running.sorted { ($0.job, $0.attempt) < ($1.job, $1.attempt) }.map { r -> String in
                var s = "\(r.job) attempt \(r.attempt)"
                if let ep = r.epoch { s += ", epoch \(ep)" + (r.epochs.map { "/\($0)" } ?? "") }
                return s
            }
            out.append("  \(w.id) on \(w.host) (\(w.state), \(w.slots) slot(s), seen \(Int(max(0, w.seenAgo)))s ago): " +
                       (running.isEmpty ? "idle" : running.joined(separator: "; ")))
        }
        let outcomes = attempts.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !outcomes.isEmpty { out.append("attempts: " + outcomes.map { "\($0.value) \($0.key)" }.joined(separator: ", ")) }
        if let eta = etaSeconds, let rate {
            out.append("ETA: about \(Int(eta.rounded()))s at the rate so far (\(String(format: "%.2f", rate)) jobs/s)")
        } else if left == 0 {
            out.append("complete")
        }
        for line in searches ?? [] { out.append("target search \(line)") }
        for f in failedJobs { out.append("failed \(f.job): \(f.reason)") }
        return out.joined(separator: "\n")
    }

    // MARK: source 1: the state dir

    /// Reads the snapshot from the store (read-only queries).
    public static func load(store: SweepStore) throws -> SweepStatus {
        var s = SweepStatus()
        let jobs = try store.jobs(), attempts = try store.attempts(), results = try store.results()
        for j in jobs { s.jobs[j.state.rawValue, default: 0] += 1 }
        s.total = jobs.count
        let running = jobs.filter { $0.state == .running }.sorted { $0.id < $1.id }
        let now = Date().timeIntervalSince1970
        for w in try store.workers() {
            let jobs = running.filter { $0.worker == w.id }.map { r -> RunningJob in
                var j = RunningJob(job: r.id, attempt: r.attempt)
                if let p = r.progress, let o = try? JSONSerialization.jsonObject(with: Data(p.utf8)) as? [String: Any] {
                    j.epoch = o["epoch"] as? Int
                    j.epochs = o["epochs"] as? Int
                }
                return j
            }
            s.workers.append(WorkerStatus(id: w.id, host: w.host, state: w.state, slots: w.slots, seenAgo: now - w.lastSeen, running: jobs))
        }
        for a in attempts { s.attempts[a.outcome?.rawValue ?? JobState.running.rawValue, default: 0] += 1 }
        let first = attempts.map(\.started).min(), last = results.map(\.finished).max()
        if let first, let last, !results.isEmpty, last > first { s.rate = Double(results.count) / (last - first) }
        s.failedJobs = jobs.filter { $0.state == .failed }.sorted { $0.id < $1.id }.prefix(failedShown)
            .map { FailedJob(job: $0.id, reason: $0.reason ?? "") }
        if let text = try store.meta(Coordinator.searchesMetaKey),
           let definitions = try? JSONDecoder().decode([SearchDefinition].self, from: Data(text.utf8)), !definitions.isEmpty {
            let recovery = Dictionary(results.map { ($0.job, Coordinator.recovery($0.result)) }, uniquingKeysWith: { a, _ in a })
            let states = jobs.map { (id: $0.id, state: $0.state, recovery: recovery[$0.id] ?? nil) }
            s.searches = definitions.map { d in d.replay(states).answer.sentence(search: d.name, method: d.method, target: d.target) }
        }
        return s
    }
}
