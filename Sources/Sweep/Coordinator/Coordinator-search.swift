import Basics
import Foundation

/// A targeted search as the coordinator runs it: its definition and the bisection's state.
final class SearchEntry {
    let definition: SearchDefinition
    var search: TargetSearch
    init(_ d: SearchDefinition) { definition = d; search = d.search }
}

/// The thin hook between the coordinator and `TargetSearch`: probes become compress jobs as results
/// arrive, several at once when several workers are idle.
extension Coordinator {
    static let searchesMetaKey = "target_searches"

    /// The searches of the sweep file (stored for a resume without it), or the stored ones; each
    /// replays the probes the state dir already has (done, failed, queued or running).
    func loadSearches(_ planned: [SearchDefinition]?) throws {
        var definitions: [SearchDefinition] = []
        if let planned {
            definitions = planned
            let text = planned.isEmpty ? nil : String(decoding: try JSONEncoder().encode(planned), as: UTF8.self)
            if try store.meta(Coordinator.searchesMetaKey) != text { try store.setMeta(Coordinator.searchesMetaKey, text) }
        } else if let text = try store.meta(Coordinator.searchesMetaKey) {
            do { definitions = try JSONDecoder().decode([SearchDefinition].self, from: Data(text.utf8)) } catch {
                throw SweepError.invalid("state dir \(options.stateDir): meta \(Coordinator.searchesMetaKey) is not readable (\(error)); use a new --state-dir")
            }
        }
        searches = definitions.map(SearchEntry.init)
        if searches.isEmpty { return }
        let results = Dictionary(try store.results().map { ($0.job, $0.result) }, uniquingKeysWith: { a, _ in a })
        let states = jobs.all.map { e -> (id: String, state: JobState, recovery: Double?) in
            let state: JobState = e.terminal ? e.state : .queued   // the rest: pending
            return (id: e.id, state: state, recovery: Coordinator.recovery(results[e.id]))
        }
        for s in searches { s.search = s.definition.replay(states) }
    }

    /// Dice recovery as a fraction from a compress job's result JSON (nil: none, or not a number).
    static func recovery(_ resultJSON: String?) -> Double? {
        guard let text = resultJSON, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let percent = object["diceRecoveryPercent"] as? Double, percent.isFinite else { return nil }
        return percent / 100
    }

    /// Every search is finished, or cannot go on (its baseline failed).
    var searchesFinished: Bool { searches.allSatisfy { $0.search.finished || searchBlocked($0) } }

    func searchBlocked(_ s: SearchEntry) -> Bool {
        s.definition.deps.contains { jobs[$0].map { $0.state == .failed } ?? true }
    }

    /// A job finished or failed: tell the search it probes, if any.
    func searchResult(_ e: JobRecord, resultJSON: String?) {
        for s in searches {
            guard let i = s.definition.index(ofJob: e.planned.id) else { continue }
            let recovery = resultJSON == nil ? nil : Coordinator.recovery(resultJSON)
            s.search.record(i, recovery: recovery)
            let a = s.search.answer
            Log.info("target search \(s.definition.name): \(e.planned.id) recovery \(recovery.map { String(format: "%.2f%%", $0 * 100) } ?? "none"); "
                     + "bracket \(a.misses.map { "\($0)" } ?? "-") .. \(a.meets.map { "\($0)" } ?? "-")\(s.search.finished ? " (finished)" : "")")
        }
    }

    /// New probes: each unfinished search keeps at least one probe going, and takes idle slots
    /// (free worker slots no queued job will fill) once its baseline is done.
    func advanceSearches() {
        if searches.isEmpty { return }
        var idle = workers.freeReadySlots - jobs.dispatchableCount
        for s in searches where !s.search.finished && !searchBlocked(s) {
            let baselineDone = s.definition.deps.allSatisfy { jobs[$0].map { $0.state == .done } ?? false }
            let probes = s.search.next(count: baselineDone ? max(0, idle) : 0)
            idle -= probes.count
            for i in probes {
                do { try addProbe(s.definition, i) } catch {
                    Log.error("target search \(s.definition.name): cannot add \(s.definition.jobID(i)): \(error)")
                    s.search.record(i, recovery: nil)
                }
            }
        }
    }

    func addProbe(_ d: SearchDefinition, _ index: Int) throws {
        let job = try d.job(index)
        if jobs.index(of: job.id) != nil { return }  // a grid job of the same setting: its result counts
        // The committer writes the store while we serve: let it finish first, so the store
        // changes in the order the coordinator made them.
        try committer?.waitIdle()
        try store.addJobs([job], maxAttempts: d.maxAttempts, planHash: nil, sweepJSON: nil, event: SweepEventKind.searchProbe.rawValue)
        let failed = jobs.add(job, maxAttempts: d.maxAttempts, ops: &ops)
        progressView.jobEvent("target search \(d.name): probing \(job.id)", kind: "compress", total: jobs.count)
        jobsFailed(failed)
    }
}
