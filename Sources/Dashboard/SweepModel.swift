import Basics
import Foundation
import Sweep

/// One sweep as the dashboard holds it: every job, curves, workers, searches. Loaded from the
/// state dir (read-only SQLite), then kept current by the coordinator's events (live) or by
/// reloading when the state dir changes (`serve`). Queries run here, server-side, so the browser
/// only ever receives one page of the job table however large the sweep.
actor SweepModel {
    let stateDir: String
    let name: String
    private let store: SweepStore
    private(set) var jobs: [JobView] = []
    private var index: [String: Int] = [:]
    /// Per job: the points of its newest attempt's curve, one per epoch (PROGRESS), by epoch.
    private var curves: [String: Curve] = [:]
    private(set) var status = SweepStatus()
    private var statusTime = 0.0
    private var brackets: [SearchBracket] = []
    /// Spec leaves that vary across jobs: the grid's axes.
    private(set) var axes: [String] = []
    /// Bumped by every change: SSE streams send an update when it moves.
    private(set) var version = 0
    private var storeStamp: [Double] = []
    let metrics: DashboardMetrics

    struct Curve: Sendable {
        var attempt: Int
        var points: [Int: [String: Double]]
    }

    /// At most this many epochs per curve (a hostile or broken worker cannot grow one without bound).
    static let maxCurvePoints = 10_000

    init(stateDir: String, name: String, metrics: DashboardMetrics) throws {
        self.stateDir = stateDir
        self.name = name
        store = try SweepStore(stateDir: stateDir, readOnly: true)
        self.metrics = metrics
    }

    // MARK: loading

    /// Reads everything from the store (start, resync after a dropped event queue, `serve` refresh).
    func reload() throws {
        let rows = try store.jobs()
        let results = Dictionary(try store.results().map { ($0.job, $0) }, uniquingKeysWith: { a, _ in a })
        var views: [JobView] = []
        views.reserveCapacity(rows.count)
        for (seq, r) in rows.enumerated() {
            var v = JobView(id: r.id, kind: r.kind, seq: seq, state: r.state, attempt: r.attempt, worker: r.worker, reason: r.reason,
                            settings: SpecLeaves.flatten(r.spec))
            if r.state == .running, let p = r.progress, let h = ProgressFields(p) { v.epoch = h.epoch; v.epochs = h.epochs }
            if let res = results[r.id] {
                v.figures = ResultFigures(resultJSON: res.result)
                v.seconds = res.seconds
                v.artifacts = res.artifacts
            }
            views.append(v)
        }
        jobs = views
        index = Dictionary(views.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        axes = Self.varyingAxes(views)
        if statusTime == 0 || status.total != views.count { status = try SweepStatus.load(store: store) }
        brackets = try SearchBracket.load(store: store, jobs: views.map { ($0.id, $0.state, results[$0.id]?.result) })
        storeStamp = currentStamp()
        version += 1
        metrics.update(self.status, jobs: stateCounts())
    }

    /// `serve`: reloads when the database files changed (a running coordinator writes them).
    func reloadIfChanged() throws {
        if currentStamp() != storeStamp {
            try reload()
            status = try SweepStatus.load(store: store)
            metrics.update(status, jobs: stateCounts())
        }
    }

    private func currentStamp() -> [Double] {
        [SweepStore.fileName, SweepStore.fileName + "-wal"].map { f in
            ((try? FileManager.default.attributesOfItem(atPath: stateDir + "/" + f))?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        }
    }

    /// Spec leaves with at least two values among the jobs that have them (a train-only setting
    /// is not an axis just because compress jobs lack it), and at most 64 (not an id).
    static func varyingAxes(_ jobs: [JobView]) -> [String] {
        var values: [String: Set<Setting>] = [:]
        for j in jobs {
            for (k, v) in j.settings where values[k, default: []].count <= 64 { values[k, default: []].insert(v) }
        }
        return values.filter { $0.value.count >= 2 && $0.value.count <= 64 }.map(\.key).sorted()
    }

    // MARK: live events

    /// The coordinator's committed changes, in order, then its newest status.
    func apply(_ batch: DashboardFeed.Batch) throws {
        if batch.overflowed { try reload() }
        for e in batch.events { apply(e) }
        if case let (s, t)? = batch.status {
            // Search probes are added while the sweep runs: new jobs are read from the store.
            if s.total != jobs.count { try reload() }
            status = s
            statusTime = t
            if !brackets.isEmpty {
                brackets = try SearchBracket.load(store: store, jobs: jobs.map { ($0.id, $0.state, nil) }).map { b in
                    var b = b
                    b.probes = b.probes.map { p in var p = p; p.recovery = index[p.job].flatMap { jobs[$0].figures.recovery }; return p }
                    return b
                }
            }
            metrics.update(s, jobs: stateCounts())
        }
        if !batch.events.isEmpty || batch.status != nil { version += 1 }
    }

    func apply(_ e: SweepEvent) {
        switch e {
        case .jobState(let job, let state, let attempt, let worker, let reason):
            guard let i = index[job] else { return }
            jobs[i].state = state
            if let attempt { jobs[i].attempt = attempt }
            if state == .running { jobs[i].worker = worker; jobs[i].epoch = nil; jobs[i].epochs = nil; metrics.dispatches.increment() }
            if state == .failed { jobs[i].reason = reason }
            if state == .done { jobs[i].worker = worker ?? jobs[i].worker }
        case .progress(let job, let header):
            guard let i = index[job], let p = ProgressFields(header) else { return }
            jobs[i].epoch = p.epoch
            jobs[i].epochs = p.epochs
            guard let epoch = p.epoch, !p.metrics.isEmpty else { return }
            var c = curves[job] ?? Curve(attempt: p.attempt, points: [:])
            if c.attempt != p.attempt { c = Curve(attempt: p.attempt, points: [:]) }
            if c.points.count < Self.maxCurvePoints || c.points[epoch] != nil { c.points[epoch] = p.metrics }
            curves[job] = c
        case .result(let job, _, let worker, let result, let artifacts, let seconds):
            guard let i = index[job] else { return }
            jobs[i].figures = ResultFigures(resultJSON: result)
            jobs[i].seconds = seconds
            jobs[i].worker = worker
            jobs[i].artifacts = (try? JSONDecoder().decode([String: String].self, from: Data(artifacts.utf8))) ?? [:]
            metrics.results.increment()
        case .artifact(_, let bytes):
            metrics.artifactBytes.increment(by: bytes)
        }
    }

    func stateCounts() -> [JobState: Int] {
        var c: [JobState: Int] = [:]
        for j in jobs { c[j.state, default: 0] += 1 }
        return c
    }

    // MARK: queries

    func job(_ id: String) -> JobView? { index[id].map { jobs[$0] } }

    /// One job's curve: PROGRESS points of its newest attempt, else the history.csv it produced.
    func curve(_ id: String) -> [(epoch: Int, metrics: [String: Double])] {
        if let c = curves[id], !c.points.isEmpty { return c.points.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        guard let j = job(id), let hash = j.artifacts["history.csv"], SHA256Hasher.isValidHex(hash) else { return [] }
        return HistoryCSV.points(path: stateDir + "/artifacts/" + hash)
    }

    func hasArtifact(_ hash: String) -> Bool {
        jobs.contains { $0.artifacts.values.contains(hash) }
    }

    // MARK: JSON answers, cached per version (ten open pages asking for the same page cost one query)

    private var cache: [String: Data] = [:]
    private var cacheVersion = -1

    private func cached(_ key: String, _ make: () -> Any) -> Data {
        if cacheVersion != version { cache.removeAll(keepingCapacity: true); cacheVersion = version }
        if let d = cache[key] { return d }
        let d = (try? JSONSerialization.data(withJSONObject: make(), options: [.sortedKeys])) ?? Data("{}".utf8)
        if cache.count < 256 { cache[key] = d }
        return d
    }

    func summaryJSON() -> Data { cached("summary") { summary() } }

    func jobsJSON(_ q: JobQuery) -> Data {
        cached("jobs \(q)") {
            let (matched, rows) = q.run(jobs)
            return ["matched": matched, "total": jobs.count, "page": q.page, "size": q.size,
                    "rows": rows.map { JobQuery.row($0, axes: axes) }] as [String: Any]
        }
    }

    func jobJSON(_ id: String) -> Data? {
        guard let j = job(id) else { return nil }
        var row = JobQuery.row(j, axes: axes)
        row["curve"] = curve(id).map { ["epoch": $0.epoch, "metrics": $0.metrics] as [String: Any] }
        return try? JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
    }

    /// The Pareto points as a JSON array, each tagged with `sweep` (its index in `serve`).
    func paretoJSON(sweep: Int) -> Data {
        cached("pareto \(sweep)") {
            ParetoFront.points(jobs).map { p in
                var p = p
                p["sweep"] = sweep
                return p
            }
        }
    }

    func parallelJSON() -> Data { cached("parallel") { ParallelCoordinates.data(jobs, axes: axes) } }

    func summary() -> [String: Any] {
        let counts = stateCounts()
        var s: [String: Any] = [
            "name": name, "stateDir": stateDir, "total": jobs.count, "version": version,
            "jobs": Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, counts[$0] ?? 0) }),
            "workers": status.workers.map { w -> [String: Any] in
                ["id": w.id, "host": w.host, "state": w.state, "slots": w.slots, "seenAgo": (w.seenAgo * 10).rounded() / 10,
                 "running": w.running.map { r -> [String: Any] in
                     ["job": r.job, "attempt": r.attempt, "epoch": orNull(r.epoch), "epochs": orNull(r.epochs)]
                 }]
            },
            "searches": status.searches ?? [],
            "axes": axes,
        ]
        let left = jobs.count - (counts[.done] ?? 0) - (counts[.failed] ?? 0)
        s["left"] = left
        s["complete"] = left == 0
        s["rate"] = orNull(status.rate)
        var st = status
        st.total = jobs.count
        st.jobs = Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
        s["etaSeconds"] = orNull(st.etaSeconds.map { ($0 * 10).rounded() / 10 })
        if let data = try? JSONEncoder().encode(brackets), let b = try? JSONSerialization.jsonObject(with: data) { s["brackets"] = b }
        return s
    }
}

/// The fields of a PROGRESS header the dashboard uses (the coordinator already checked it).
struct ProgressFields {
    var attempt: Int
    var epoch: Int?
    var epochs: Int?
    var metrics: [String: Double]

    init?(_ json: String) {
        guard let h = try? JSONDecoder().decode(ProgressHeader.self, from: Data(json.utf8)) else { return nil }
        attempt = h.attempt
        epoch = h.epoch.flatMap { (0 ... 1_000_000).contains($0) ? $0 : nil }
        epochs = h.epochs
        metrics = (h.metrics ?? [:]).filter { $0.value.isFinite }
        if metrics.count > 32 { metrics = [:] }
    }
}

/// A train job's `history.csv` (header: epoch, train_loss, ...) as curve points.
enum HistoryCSV {
    static func points(path: String) -> [(epoch: Int, metrics: [String: Double])] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.utf8.count < 8 << 20 else { return [] }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: ",").map(String.init), header.first == "epoch" else { return [] }
        return lines.dropFirst().compactMap { line in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            guard cells.count == header.count, let epoch = Int(cells[0]) else { return nil }
            var m: [String: Double] = [:]
            for (k, c) in zip(header.dropFirst(), cells.dropFirst()) { if let v = Double(c), v.isFinite { m[k] = v } }
            return (epoch, m)
        }
    }
}
