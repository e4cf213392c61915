import Basics
import Foundation

/// `ranksweep retry`: failed jobs go back to the queue with a fresh attempt budget, and so do the
/// jobs that failed because of them (their dependents, transitively). Done through the store while
/// no coordinator runs on the state dir (`StateLock`); the next `coordinator`/`run` on it picks
/// them up.
public enum Retry {
    /// The jobs to requeue, in plan order: the named (or all failed) jobs and their failed dependents.
    /// Errors name an unknown job or one that has not failed.
    public static func select(_ rows: [JobRow], allFailed: Bool, ids: [String], stateDir: String) throws -> [String] {
        let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var chosen = Set<String>()
        if allFailed { chosen.formUnion(rows.filter { $0.state == .failed }.map(\.id)) }
        for id in ids {
            guard let row = byID[id] else { throw SweepError.invalid("state dir \(stateDir) has no job \(id)") }
            guard row.state == .failed else { throw SweepError.invalid("job \(id) in \(stateDir) is \(row.state.rawValue), not failed: nothing to retry") }
            chosen.insert(id)
        }
        var dependents: [String: [String]] = [:]
        for r in rows { for d in r.deps { dependents[d, default: []].append(r.id) } }
        var stack = Array(chosen)
        while let id = stack.popLast() {
            for d in dependents[id] ?? [] where byID[d]?.state == .failed && !chosen.contains(d) {
                chosen.insert(d)
                stack.append(d)
            }
        }
        return rows.map(\.id).filter { chosen.contains($0) }
    }

    /// Requeues `select`'s jobs under the state dir's lock; returns their ids.
    public static func run(stateDir: String, allFailed: Bool, ids: [String]) throws -> [String] {
        guard Files.exists(stateDir + "/" + SweepStore.fileName) else {
            throw SweepError.invalid("state dir \(stateDir) has no \(SweepStore.fileName) (not a sweep state dir)")
        }
        let lock = try StateLock(stateDir: stateDir, purpose: "stop it first (Ctrl-C or SIGTERM), retry, then start it again")
        defer { withExtendedLifetime(lock) {} }
        let store = try SweepStore(stateDir: stateDir)
        let jobs = try select(store.jobs(), allFailed: allFailed, ids: ids, stateDir: stateDir)
        try store.requeueForRetry(jobs)
        return jobs
    }
}
