import Foundation

/// One compression setting (method and rank or tau) averaged over the seeds it finished on.
public struct SettingSummary: Codable, Sendable, Equatable {
    public var label: String
    public var method: String
    public var rank: Int?
    public var tau: Double?
    public var seeds: Int
    public var dice: Double
    public var recoveryPercent: Double
    public var parameterReductionPercent: Double
    public var flopReductionPercent: Double
    public var speedUp: Double?
}

/// "Which compression should I use?", answered from the numbers with the thresholds stated.
public struct Recommendation: Codable, Sendable {
    /// A setting keeps accuracy when its Dice after fine-tuning is at least this % of the baseline's.
    public static let recoveryThreshold = 95.0
    /// Upper bounds (%) of the parameter-reduction levels compared ("best Dice at each level").
    public static let reductionLevels = [25.0, 50.0, 75.0, 100.0]
    /// Below this baseline Dice the baseline itself has not learned the task: the comparison says so.
    public static let weakBaselineDice = 0.5

    public struct Level: Codable, Sendable {
        /// `0-25%`
        public var range: String
        public var best: SettingSummary
    }

    public var settings: [SettingSummary]
    /// The largest mean parameter reduction whose mean recovery is >= the threshold.
    public var recommended: SettingSummary?
    /// The best mean Dice after fine-tuning within each reduction level that has a setting.
    public var bestPerLevel: [Level]
    /// Settings on the Pareto front of (reduction, Dice), per method.
    public var frontCounts: [String: Int]
    /// The text of the paragraph, sentence by sentence (Markdown-free).
    public var sentences: [String]

    public init(rows: [ResultRow]) {
        let baselineDice = rows.filter { $0.method == "baseline" }.compactMap(\.diceAfterFineTune)
        let done = rows.filter { $0.kind == "compress" && $0.status == "done" && $0.diceAfterFineTune != nil }
        settings = Dictionary(grouping: done, by: \.label).map { label, group in
            func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(max(1, xs.count)) }
            let speedUps = group.compactMap(\.speedUp)
            return SettingSummary(label: label, method: group[0].method, rank: group[0].rank, tau: group[0].tau, seeds: group.count,
                                  dice: mean(group.compactMap(\.diceAfterFineTune)), recoveryPercent: mean(group.compactMap(\.diceRecoveryPercent)),
                                  parameterReductionPercent: mean(group.compactMap(\.parameterReductionPercent)),
                                  flopReductionPercent: mean(group.compactMap(\.flopReductionPercent)),
                                  speedUp: speedUps.isEmpty ? nil : ResultsTable.median(speedUps))
        }.sorted { $0.parameterReductionPercent < $1.parameterReductionPercent }

        let keep = settings.filter { $0.recoveryPercent >= Recommendation.recoveryThreshold }
        recommended = keep.max { ($0.parameterReductionPercent, $0.dice) < ($1.parameterReductionPercent, $1.dice) }
        var levels: [Level] = []
        var lower = 0.0
        for upper in Recommendation.reductionLevels {
            let inLevel = settings.filter { $0.parameterReductionPercent >= lower && ($0.parameterReductionPercent < upper || upper == 100) }
            if let best = inLevel.max(by: { $0.dice < $1.dice }) {
                levels.append(Level(range: String(format: "%.0f–%.0f%%", lower, upper), best: best))
            }
            lower = upper
        }
        bestPerLevel = levels
        let all = settings
        let front = Pareto.front(all.map { ($0.parameterReductionPercent, $0.dice) })
        let counts = Dictionary(grouping: front.map { all[$0].method }, by: { $0 }).mapValues(\.count)
        frontCounts = counts

        // The paragraph.
        var s: [String] = []
        let pending = rows.filter { $0.kind == "compress" && $0.status != "done" }
        s.append(String(format: "Thresholds: a setting keeps accuracy when its test Dice after fine-tuning is at least %.0f%% of the baseline's (recovery); "
                        + "parameter reductions are compared in levels of 0–25%%, 25–50%%, 50–75%% and 75–100%%; with several seeds, each setting's numbers are means over its seeds.",
                        Recommendation.recoveryThreshold))
        s.append("Based on \(done.count) finished compression job(s) in \(settings.count) setting(s)"
                 + (pending.isEmpty ? "." : "; \(pending.count) without a result (" + Recommendation.countsText(pending.map(\.status)) + ") not counted."))
        if settings.isEmpty {
            s.append("No compression job has finished yet, so there is nothing to recommend.")
        } else if let r = recommended {
            s.append(String(format: "Recommended: %@ — the largest parameter reduction (%.1f%%, FLOPs -%.1f%%) whose Dice recovery stays at or above %.0f%% (%.1f%%, Dice %.4f).",
                            r.label, r.parameterReductionPercent, r.flopReductionPercent, Recommendation.recoveryThreshold, r.recoveryPercent, r.dice))
        } else if let closest = settings.max(by: { $0.recoveryPercent < $1.recoveryPercent }) {
            s.append(String(format: "No setting keeps %.0f%% of the baseline's Dice; the closest is %@ (%.1f%% recovery at %.1f%% fewer parameters): compress less, or fine-tune longer.",
                            Recommendation.recoveryThreshold, closest.label, closest.recoveryPercent, closest.parameterReductionPercent))
        }
        if !levels.isEmpty {
            s.append("Best Dice at each reduction level: " + levels.map {
                String(format: "%@: %@ (%.4f)", $0.range, $0.best.label, $0.best.dice)
            }.joined(separator: "; ") + ".")
        }
        // SVD and ARSVD always (the seed's grid), Tucker-2 and spatial SVD when the sweep ran them.
        let methodsRun = Set(all.map(\.method))
        // A budget sweep's models are the budget allocation and uniform SVD at the same budget.
        let budget = methodsRun.contains("budget")
        let names = (budget && !methodsRun.contains("svd") && !methodsRun.contains("arsvd") ? [] : ["svd", "arsvd"])
            + ["tucker2", "spatial-svd", "budget", "uniform-svd"].filter { methodsRun.contains($0) }
        func display(_ m: String) -> String {
            ["svd": "SVD", "arsvd": "ARSVD", "tucker2": "Tucker-2", "spatial-svd": "spatial-SVD", "budget": "budget-allocation",
             "uniform-svd": "uniform-SVD-at-budget"][m] ?? m
        }
        if !all.isEmpty && !names.isEmpty {
            let most = names.map { counts[$0] ?? 0 }.max() ?? 0
            let leaders = names.filter { (counts[$0] ?? 0) == most }
            let verdict = leaders.count == 1 ? "\(display(leaders[0])) holds more of the Pareto front"
                : names.count == 2 ? "neither method dominates the Pareto front" : "no method dominates the Pareto front"
            let parts = names.map { "\(counts[$0] ?? 0) \(display($0))" }
            let list = parts.count == 1 ? parts[0] : parts.count == 2 ? parts.joined(separator: " and ") : parts.dropLast().joined(separator: ", ") + " and " + parts.last!
            s.append("Pareto front of Dice after fine-tuning against parameter reduction: \(list) setting(s); \(verdict).")
        }
        if let b = baselineDice.isEmpty ? nil : baselineDice.reduce(0, +) / Double(baselineDice.count), b < Recommendation.weakBaselineDice {
            s.append(String(format: "Caution: the baseline's Dice is only %.3f (below %.1f), so recoveries compare weak models and can exceed 100%%; train the baseline longer before trusting the ranking.",
                            b, Recommendation.weakBaselineDice))
        }
        if settings.contains(where: { ($0.speedUp ?? 1) < 1 }) {
            s.append("Latency: speed-ups below 1x mean the factorised model ran slower (two thin convolutions instead of one); on small models timings are dominated by overheads.")
        }
        sentences = s
    }

    public var paragraph: String { sentences.joined(separator: " ") }

    static func countsText(_ states: [String]) -> String {
        Dictionary(grouping: states, by: { $0 }).sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key)" }.joined(separator: ", ")
    }
}
