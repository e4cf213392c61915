import Foundation
import Sweep

/// A page of the job table: filtered, sorted and cut server-side (`/api/jobs`). Every parameter
/// is checked and bounded; a bad one is refused with what and why.
struct JobQuery: Equatable, Sendable {
    var page = 0
    var size = 50
    var sort = "seq"
    var descending = false
    var states: Set<JobState> = []
    var text = ""

    static let maxSize = 500
    static let columns: Set<String> = ["seq", "id", "kind", "state", "attempt", "worker", "epoch", "dice", "parameters", "flops", "recovery", "seconds"]

    struct Invalid: Error, CustomStringConvertible { let description: String }

    /// From the URL's query parameters (unknown ones are ignored, as browsers add their own).
    init(_ params: [String: String]) throws {
        if let p = params["page"] {
            guard let n = Int(p), (0 ... 1_000_000).contains(n) else { throw Invalid(description: "page=\(p.prefix(20)): not an integer in 0...1000000") }
            page = n
        }
        if let s = params["size"] {
            guard let n = Int(s), (1 ... Self.maxSize).contains(n) else { throw Invalid(description: "size=\(s.prefix(20)): not an integer in 1...\(Self.maxSize)") }
            size = n
        }
        if let s = params["sort"] {
            guard Self.columns.contains(s) || (s.hasPrefix("axis:") && s.count <= 120) else {
                throw Invalid(description: "sort=\(s.prefix(40)): not a column (\(Self.columns.sorted().joined(separator: ", ")) or axis:NAME)")
            }
            sort = s
        }
        if let d = params["dir"] {
            guard d == "asc" || d == "desc" else { throw Invalid(description: "dir=\(d.prefix(20)): give asc or desc") }
            descending = d == "desc"
        }
        if let s = params["state"], !s.isEmpty {
            for part in s.split(separator: ",").prefix(8) {
                guard let st = JobState(rawValue: String(part)) else {
                    throw Invalid(description: "state=\(part.prefix(20)): not one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                states.insert(st)
            }
        }
        if let q = params["q"] {
            guard q.count <= 100 else { throw Invalid(description: "q: longer than 100 characters") }
            text = q.lowercased()
        }
    }

    init() {}

    /// The matching jobs' count and the requested page of them.
    func run(_ jobs: [JobView]) -> (matched: Int, rows: [JobView]) {
        // The default view (plan order, no filter) is a slice: jobs are kept in plan order.
        if sort == "seq" && states.isEmpty && text.isEmpty {
            let start = min(jobs.count, page * size), end = min(jobs.count, start + size)
            let rows = descending ? Array(jobs.reversed()[start ..< end]) : Array(jobs[start ..< end])
            return (jobs.count, rows)
        }
        var selected = jobs.filter { j in
            (states.isEmpty || states.contains(j.state))
                && (text.isEmpty || j.id.lowercased().contains(text) || j.label.lowercased().contains(text)
                    || (j.worker?.lowercased().contains(text) ?? false))
        }
        let key = sort, desc = descending
        if key == "seq" { return (selected.count, Array((desc ? selected.reversed() : selected).dropFirst(page * size).prefix(size))) }
        selected.sort { a, b in
            let o = Self.compare(a, b, key)
            if o == 0 { return a.seq < b.seq }
            return desc ? o > 0 : o < 0
        }
        let start = min(selected.count, page * size)
        return (selected.count, Array(selected[start ..< min(selected.count, start + size)]))
    }

    /// -1, 0, 1; absent values sort last in ascending order.
    static func compare(_ a: JobView, _ b: JobView, _ key: String) -> Int {
        func num(_ x: Double?, _ y: Double?) -> Int {
            switch (x, y) {
            case let (x?, y?): return x < y ? -1 : x > y ? 1 : 0
            case (nil, nil): return 0
            case (nil, _): return 1
            case (_, nil): return -1
            }
        }
        func str(_ x: String?, _ y: String?) -> Int {
            switch (x, y) {
            case let (x?, y?): return x < y ? -1 : x > y ? 1 : 0
            case (nil, nil): return 0
            case (nil, _): return 1
            case (_, nil): return -1
            }
        }
        switch key {
        case "seq": return num(Double(a.seq), Double(b.seq))
        case "id": return str(a.id, b.id)
        case "kind": return str(a.kind, b.kind)
        case "state": return str(a.state.rawValue, b.state.rawValue)
        case "attempt": return num(Double(a.attempt), Double(b.attempt))
        case "worker": return str(a.worker, b.worker)
        case "epoch": return num(a.epoch.map(Double.init), b.epoch.map(Double.init))
        case "dice": return num(a.figures.dice, b.figures.dice)
        case "parameters": return num(a.figures.parameters, b.figures.parameters)
        case "flops": return num(a.figures.flops, b.figures.flops)
        case "recovery": return num(a.figures.recovery, b.figures.recovery)
        case "seconds": return num(a.seconds, b.seconds)
        default:
            let axis = String(key.dropFirst(5))
            switch (a.settings[axis], b.settings[axis]) {
            case let (.number(x)?, .number(y)?): return num(x, y)
            case let (x, y): return str(x.map { "\($0.json)" }, y.map { "\($0.json)" })
            }
        }
    }

    /// A row as the page shows it.
    static func row(_ j: JobView, axes: [String]) -> [String: Any] {
        var r: [String: Any] = ["id": j.id, "kind": j.kind, "label": j.label, "state": j.state.rawValue, "attempt": j.attempt]
        r["worker"] = orNull(j.worker)
        r["epoch"] = orNull(j.epoch)
        r["epochs"] = orNull(j.epochs)
        r["dice"] = orNull(j.figures.dice)
        r["parameters"] = orNull(j.figures.parameters)
        r["flops"] = orNull(j.figures.flops)
        r["recovery"] = orNull(j.figures.recovery)
        r["seconds"] = orNull(j.seconds)
        r["reason"] = orNull(j.reason)
        r["settings"] = Dictionary(uniqueKeysWithValues: axes.compactMap { a in j.settings[a].map { (a, $0.json) } })
        r["artifacts"] = j.artifacts
        return r
    }
}
