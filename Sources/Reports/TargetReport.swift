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
        results.searches.map { d in
            var s = d.search
            var probes: [(Int, String)] = []
            for job in results.compressJobs {
                guard let i = d.index(ofJob: job.id) else { continue }
                switch job.status {
                case .done: s.record(i, recovery: job.compressResult.map { $0.diceRecoveryPercent / 100 }.flatMap { $0.isFinite ? $0 : nil })
                case .failed: s.record(i, recovery: nil)
                default: s.markPending(i)
                }
                probes.append((i, job.id))
            }
            return TargetAnswer(search: d.name, method: d.method, target: d.target, answer: s.answer, probes: probes.sorted { $0.0 < $1.0 }.map(\.1))
        }
    }

    /// "SVD (svd-s1): rank 6 keeps 99.3% of the baseline's Dice (target 99%); rank 5 misses it (97.1%). 5 jobs."
    public var sentence: String {
        func setting(_ v: Double) -> String { method == "svd" ? "rank \(Int(v))" : "tau \(v)" }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "?" }
        let goal = String(format: "%g%%", target * 100)
        var text = "\(method.uppercased()) (\(search)): "
        if let meets = answer.meets {
            text += "\(setting(meets)) keeps \(pct(answer.meetsRecovery)) of the baseline's Dice (target \(goal))"
            if let misses = answer.misses {
                text += "; \(setting(misses)) misses it (\(pct(answer.missesRecovery)))"
            } else {
                text += answer.tight ? "; it is the most compressive setting searched" : ""
            }
        } else if let misses = answer.misses {
            text += "no setting searched keeps \(goal): even \(setting(misses)) reaches only \(pct(answer.missesRecovery))"
        } else {
            text += "no answer yet"
        }
        if !answer.tight && (answer.meets != nil || answer.misses != nil) { text += "; the job budget ran out before the bracket closed" }
        return text + ". \(answer.jobs) job(s)."
    }
}
