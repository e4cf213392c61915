import Foundation
import Sweep

/// The answer of each targeted search (`target:`), replayed from the stored results with the
/// coordinator's own bisection (TargetSearch): the most compressive setting that keeps the target
/// and the next more compressive one that misses it.
public struct TargetAnswer: Codable, Sendable {
    public var search: String
    public var method: String
    /// Required recovery, a fraction.
    public var target: Double
    public var answer: TargetSearch.Answer
    /// The probes' job ids, most compressive first.
    public var probes: [String]

    public static func all(_ results: SweepResults) -> [TargetAnswer] {
        let jobs = results.compressJobs.map { job in
            (id: job.id, state: job.status, recovery: job.compressResult.map { $0.diceRecoveryPercent / 100 }.flatMap { $0.isFinite ? $0 : nil })
        }
        return results.searches.map { d in
            let probes = jobs.compactMap { job in d.index(ofJob: job.id).map { ($0, job.id) } }
            return TargetAnswer(search: d.name, method: d.method, target: d.target, answer: d.replay(jobs).answer,
                                probes: probes.sorted { $0.0 < $1.0 }.map(\.1))
        }
    }

    /// "SVD (svd-s1): rank 6 keeps 99.30% of the baseline's Dice (target 99%); rank 5 misses it (97.10%). 5 job(s)."
    public var sentence: String { answer.sentence(search: search, method: method, target: target) }
}
