import Foundation

/// A sweep file given to a state dir that already holds a sweep: which of its planned jobs are
/// jobs the state dir already has (kept, with their results), which are new (added), and which
/// would change a job the state dir has (refused unless changes are allowed).
///
/// Jobs match by content, not only by id: a job's kind, its spec without its own id, its deps and
/// inputs (with dependency ids mapped to the jobs they matched). So a value added to a list that
/// had one value (which renames jobs, `train-s42` -> `train-lr0.001-s42`) still keeps the old job.
public struct PlanMerge: Sendable {
    /// Jobs to add, with their final ids (a changed job allowed beside its old self gets `-v2`, `-v3`…).
    public var added: [PlannedJob] = []
    /// Jobs of the file that the state dir already has: planned id -> existing id.
    public var kept: [String: String] = [:]
    /// Existing jobs the file would change (same id, different settings), each with what changed.
    public var changes: [Change] = []

    public struct Change: Sendable, Equatable {
        public var job: String
        /// "training.epochs: 2 -> 3", or "its baseline train-s1 changes".
        public var what: [String]
    }

    /// `allowChanges`: a changed job is added under a new id beside the old one; otherwise it is
    /// listed in `changes` (and not added).
    public static func merge(existing: [PlannedJob], planned: [PlannedJob], allowChanges: Bool) -> PlanMerge {
        var m = PlanMerge()
        let byID = Dictionary(existing.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var byContent: [String: [String]] = [:]
        for e in existing { byContent[content(e, ids: [:]), default: []].append(e.id) }
        var claimed = Set<String>()
        var ids: [String: String] = [:]   // planned id -> final id
        var taken = Set(existing.map(\.id))
        var changed = Set<String>()
        for p in planned {
            let key = content(p, ids: ids)
            if let e = byID[p.id], !claimed.contains(e.id), content(e, ids: [:]) == key {
                claimed.insert(e.id); ids[p.id] = e.id; m.kept[p.id] = e.id
                continue
            }
            if let e = byContent[key]?.first(where: { !claimed.contains($0) }) {
                claimed.insert(e); ids[p.id] = e; m.kept[p.id] = e
                continue
            }
            var id = p.id
            if let old = byID[p.id] {
                if !allowChanges {
                    m.changes.append(Change(job: p.id, what: differences(old, p, ids: ids, changed: changed)))
                    changed.insert(p.id)
                    // Its dependents must not match their old selves: the id maps to no existing job.
                    ids[p.id] = p.id + changedMark
                    continue
                }
                var n = 2
                while taken.contains("\(p.id)-v\(n)") { n += 1 }
                id = "\(p.id)-v\(n)"
            }
            taken.insert(id)
            ids[p.id] = id
            m.added.append(renamed(p, to: id, ids: ids))
        }
        return m
    }

    /// The refusal: what changed, and which jobs it would invalidate.
    public func refusal(stateDir: String, source: String) -> String {
        var lines = ["\(source) changes settings that jobs in \(stateDir) were run with:"]
        for c in changes { lines.append("  \(c.job): " + c.what.joined(separator: "; ")) }
        lines.append("this would invalidate \(changes.count) job(s): \(changes.map(\.job).joined(separator: ", ")).")
        lines.append("Keep those settings, use a new --state-dir, or pass --allow-changes to run the changed jobs as new jobs beside the old ones.")
        return lines.joined(separator: "\n")
    }

    // MARK: content

    static func object(_ json: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) }

    static func canonical(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The spec object without the job's own id, its baseline id mapped.
    static func specObject(_ j: PlannedJob, ids: [String: String]) -> Any {
        guard var spec = object(j.spec) as? [String: Any] else { return j.spec }
        spec["job"] = nil
        if let b = spec["baselineJob"] as? String { spec["baselineJob"] = ids[b] ?? b }
        return spec
    }

    static func content(_ j: PlannedJob, ids: [String: String]) -> String {
        let inputs: [Any] = j.inputs.map { i in
            ["name": i.name, "hash": i.hash ?? "", "unpack": i.unpack, "from": i.fromJob.map { ids[$0] ?? $0 } ?? "", "file": i.file ?? ""] as [String: Any]
        }
        return canonical(["kind": j.kind, "spec": specObject(j, ids: ids), "deps": j.deps.map { ids[$0] ?? $0 }, "inputs": inputs] as [String: Any])
    }

    /// Leaf values by dotted path ("training.epochs" -> "2").
    static func flatten(_ value: Any, _ prefix: String, into out: inout [String: String]) {
        if let d = value as? [String: Any] {
            for (k, v) in d { flatten(v, prefix.isEmpty ? k : prefix + "." + k, into: &out) }
        } else {
            out[prefix] = canonical(value)
        }
    }

    static let changedMark = "\u{1}changed"

    static func differences(_ old: PlannedJob, _ new: PlannedJob, ids: [String: String], changed: Set<String>) -> [String] {
        var a: [String: String] = [:], b: [String: String] = [:]
        flatten(specObject(old, ids: [:]), "", into: &a)
        flatten(specObject(new, ids: ids), "", into: &b)
        var out: [String] = []
        for key in Set(a.keys).union(b.keys).sorted() where a[key] != b[key] {
            if key == "baselineJob" { continue }
            out.append("\(key): \(a[key] ?? "(none)") -> \(b[key] ?? "(none)")")
        }
        for d in new.deps where changed.contains(d) { out.append("its dependency \(d) changes") }
        let newDeps = new.deps.filter { !changed.contains($0) }.map { ids[$0] ?? $0 }
        if Set(newDeps) != Set(old.deps.filter { !changed.contains($0) }) {
            out.append("deps: \(old.deps.joined(separator: ",")) -> \(new.deps.joined(separator: ","))")
        }
        if old.kind != new.kind { out.append("kind: \(old.kind) -> \(new.kind)") }
        if out.isEmpty { out.append("its inputs change") }
        return out
    }

    /// `p` under id `id`: the spec's own id and its baseline id follow, and so do deps and inputs.
    static func renamed(_ p: PlannedJob, to id: String, ids: [String: String]) -> PlannedJob {
        var j = p
        j.id = id
        j.deps = p.deps.map { ids[$0] ?? $0 }
        j.inputs = p.inputs.map { i in var i = i; i.fromJob = i.fromJob.map { ids[$0] ?? $0 }; return i }
        if id != p.id || p.deps != j.deps, var spec = object(p.spec) as? [String: Any] {
            if spec["job"] != nil { spec["job"] = id }
            if let b = spec["baselineJob"] as? String { spec["baselineJob"] = ids[b] ?? b }
            j.spec = canonical(spec)
        }
        return j
    }
}
