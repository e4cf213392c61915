import Foundation

/// A targeted search: the most compressive setting of one method on one baseline whose Dice after
/// fine-tuning keeps at least `target` of the baseline's, found by bisection over an ordered list
/// of candidate settings (ranks or taus, most compressive first) within a job budget.
///
/// Pure: the coordinator tells it which probes finished with what recovery (`record`) and asks for
/// new probes (`next`); it never runs anything. Recovery is assumed to grow with the setting; the
/// bracket is (`missIndex`, `meetIndex`): the largest probed index known to miss and the smallest
/// known to meet. Several probes at once split the open interval (between pending probes too) so
/// idle workers get work the bisection can use.
public struct TargetSearch: Sendable, Equatable {
    /// Candidate settings, most compressive first (ascending rank or tau).
    public let candidates: [Double]
    /// Required recovery, a fraction of the baseline's Dice (0.99).
    public let target: Double
    public let maxJobs: Int
    /// Probed index -> recovery (fraction; NaN: the job failed or gave no number).
    public private(set) var results: [Int: Double] = [:]
    public private(set) var pending: Set<Int> = []

    public init(candidates: [Double], target: Double, maxJobs: Int) {
        self.candidates = candidates; self.target = target; self.maxJobs = maxJobs
    }

    /// Smallest index known to meet the target (candidates.count: none yet).
    public var meetIndex: Int { results.filter { $0.value >= target }.map(\.key).min() ?? candidates.count }
    /// Largest index below `meetIndex` known to miss (-1: none).
    public var missIndex: Int {
        let meet = meetIndex
        return results.filter { !($0.value >= target) && !$0.value.isNaN && $0.key < meet }.map(\.key).max() ?? -1
    }
    public var jobsUsed: Int { results.count + pending.count }

    /// The bracket is as tight as the candidates allow, or the budget is spent and nothing runs.
    public var finished: Bool {
        if !pending.isEmpty { return false }
        return openPoints(extra: []).isEmpty || jobsUsed >= maxJobs
    }

    /// Unprobed indices strictly inside the bracket, not failed.
    func openPoints(extra: Set<Int>) -> [Int] {
        let lo = missIndex, hi = meetIndex
        guard hi - lo > 1 else { return [] }
        return (lo + 1 ..< hi).filter { results[$0] == nil && !pending.contains($0) && !extra.contains($0) }
    }

    /// Up to `count` new probes (at least one when nothing is pending and the search is not
    /// finished), each the middle of the widest gap between the bracket's ends, pending probes and
    /// the probes chosen so far. Marks them pending.
    public mutating func next(count: Int) -> [Int] {
        var want = min(count, maxJobs - jobsUsed)
        if pending.isEmpty && want < 1 && jobsUsed < maxJobs { want = 1 }
        var chosen: [Int] = []
        while chosen.count < want {
            let lo = missIndex, hi = meetIndex
            guard hi - lo > 1 else { break }
            // Split points: the bracket's ends and every probe in it that has no verdict yet
            // (pending, chosen) or failed (NaN: skipped, never probed again).
            var splits = [lo, hi] + pending.filter { $0 > lo && $0 < hi } + chosen
            splits += results.filter { $0.value.isNaN && $0.key > lo && $0.key < hi }.map(\.key)
            splits.sort()
            var best: (Int, Int)? = nil
            for (a, b) in zip(splits, splits.dropFirst()) where b - a > 1 {
                if best == nil || b - a > best!.1 - best!.0 { best = (a, b) }
            }
            guard let (a, b) = best else { break }
            let probe = a + (b - a) / 2
            chosen.append(probe)
        }
        pending.formUnion(chosen)
        return chosen
    }

    /// A probe's outcome: its recovery as a fraction (NaN or nil: failed).
    public mutating func record(_ index: Int, recovery: Double?) {
        pending.remove(index)
        results[index] = recovery ?? .nan
    }

    /// Marks a probe pending (replaying a resumed sweep's queued or running probe).
    public mutating func markPending(_ index: Int) { if results[index] == nil { pending.insert(index) } }

    /// The answer: the most compressive setting known to meet the target and the next more
    /// compressive probed one that misses it; `tight` when they are neighbours in the candidates.
    public struct Answer: Sendable, Equatable, Codable {
        public var meets: Double?
        public var meetsRecovery: Double?
        public var misses: Double?
        public var missesRecovery: Double?
        public var tight: Bool
        public var jobs: Int
    }

    public var answer: Answer {
        let hi = meetIndex, lo = missIndex
        return Answer(meets: hi < candidates.count ? candidates[hi] : nil, meetsRecovery: hi < candidates.count ? results[hi] : nil,
                      misses: lo >= 0 ? candidates[lo] : nil, missesRecovery: lo >= 0 ? results[lo] : nil,
                      tight: hi - lo == 1, jobs: results.count)
    }
}

extension TargetSearch.Answer {
    /// "SVD (svd-s1): rank 6 keeps 99.30% of the baseline's Dice (target 99%); rank 5 misses it (97.10%). 5 job(s)."
    /// One sentence for the report and `ranksweep status` alike.
    public func sentence(search: String, method: String, target: Double) -> String {
        func setting(_ v: Double) -> String { TargetSpec.searchesRanks(method) ? "rank \(Int(v))" : "tau \(v)" }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "?" }
        let goal = String(format: "%g%%", target * 100)
        var text = "\(method.uppercased()) (\(search)): "
        if let meets {
            text += "\(setting(meets)) keeps \(pct(meetsRecovery)) of the baseline's Dice (target \(goal))"
            if let misses {
                text += "; \(setting(misses)) misses it (\(pct(missesRecovery)))"
            } else {
                text += tight ? "; it is the most compressive setting searched" : ""
            }
        } else if let misses {
            text += "no setting searched keeps \(goal): even \(setting(misses)) reaches only \(pct(missesRecovery))"
        } else {
            text += "no answer yet"
        }
        if !tight && (meets != nil || misses != nil) { text += "; the job budget ran out before the bracket closed" }
        return text + ". \(jobs) job(s)."
    }
}

extension SearchDefinition {
    /// The bisection replayed from the jobs a state dir holds: done probes with their recovery (a
    /// fraction; nil when not a number), failed ones as misses, the rest pending.
    public func replay(_ jobs: [(id: String, state: JobState, recovery: Double?)]) -> TargetSearch {
        var s = search
        for job in jobs {
            guard let i = index(ofJob: job.id) else { continue }
            switch job.state {
            case .done: s.record(i, recovery: job.recovery)
            case .failed: s.record(i, recovery: nil)
            default: s.markPending(i)
            }
        }
        return s
    }
}
