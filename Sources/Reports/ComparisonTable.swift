import Foundation

/// The seed's comparison table as text cells, shared by the Markdown and HTML reports:
/// Method | Rank/Tau | Before FT | Final | Chosen | Recovery | Param reduction, then FLOPs, latency and status.
public enum ComparisonTable {
    /// `axes`: the varied grid axes (`ReportContent.axes`), a column each after Rank/Tau, so rows
    /// that differ only in an axis never read the same.
    public static func header(multiSeed: Bool, axes: [String] = []) -> [String] {
        ["Method", "Rank/Tau"] + axes + (multiSeed ? ["Seed"] : [])
            + ["Before FT", "Final", "Chosen", "Recovery", "Param reduction", "Params", "FLOP reduction", "Latency (ms/img)", "Speed-up", "Status"]
    }

    /// Missing numbers are shown as "–".
    public static func cells(_ r: ResultRow, multiSeed: Bool, axes: [String] = []) -> [String] {
        let dash = "–"
        let method = r.method == "baseline" ? "Baseline" : r.method.uppercased()
        var status = r.status
        if r.status == "done" && r.attempts > 1 { status += " (\(r.attempts) attempts)" }
        if r.status == "running" { status += r.attempts > 1 ? " (attempt \(r.attempts))" : "" }
        let setting: String = r.method == "baseline" ? dash : r.setting
        let axisCells: [String] = axes.map { r.axes[$0] ?? dash }
        let seedCells: [String] = multiSeed ? [r.seed.map(String.init) ?? dash] : []
        let numbers: [String] = [
            r.diceBeforeFineTune.map { String(format: "%.4f", $0) } ?? dash,
            r.diceAfterFineTune.map { String(format: "%.4f", $0) } ?? dash,
            r.chosen ?? dash,
            r.diceRecoveryPercent.map { String(format: "%.1f%%", $0) } ?? dash,
            r.parameterReductionPercent.map { String(format: "%.1f%%", $0) } ?? dash,
            r.parameters.map(grouped) ?? dash,
            r.flopReductionPercent.map { String(format: "%.1f%%", $0) } ?? dash,
            r.latencyMs.map { String(format: "%.3f", $0) } ?? dash,
            r.speedUp.map { String(format: "%.2fx", $0) } ?? dash,
            status,
        ]
        return [method, setting] + axisCells + seedCells + numbers
    }

    /// 1946993 -> "1,946,993".
    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}

/// Everything the Markdown and HTML writers show.
public struct ReportContent: Sendable {
    public var stateDir: String
    public var generated: Date
    public var rows: [ResultRow]
    public var recommendation: Recommendation
    public var charts: [Chart]
    public var overlays: [OverlayImage]
    /// Why overlays (or anything optional) are missing, for the reader.
    public var notes: [String]
    public var jobs: [JobRecord]

    public var multiSeed: Bool { Set(rows.compactMap(\.seed)).count > 1 }
    /// The grid axes the sweep varies (`GridAxis` raw values), in `GridAxis` order.
    public var axes: [String] { GridAxis.allCases.map(\.rawValue).filter { a in rows.contains { $0.axes[a] != nil } } }

    /// The rows by baseline configuration (one group when no baseline axis varies).
    public var groups: [BaselineGroup] { BaselineGroup.of(tableRows) }
    /// Each group's Pareto chart, when there are several groups.
    public var groupCharts: [Chart] = []
    /// The targeted searches' answers (`target:`).
    public var targetAnswers: [TargetAnswer] = []
    /// A budget sweep's answers (`budget:`), one per baseline, and their sensitivity heatmaps.
    public var budgets: [BudgetReport] = []
    public var budgetCharts: [Chart] = []

    /// The summary across baseline configurations: label, baseline Dice, the most compressive
    /// setting that keeps `Recommendation.recoveryThreshold`, its reduction and Dice.
    public static let groupSummaryHeader = ["Baseline configuration", "Baseline Dice", "Most compressive kept", "Param reduction", "Dice after FT"]
    public func groupSummaryCells(_ g: BaselineGroup) -> [String] {
        let dash = "–", kept = g.mostCompressiveKept
        return [g.label, g.baselineDice.map { String(format: "%.4f", $0) } ?? dash, kept.map { $0.label + " (\($0.job))" } ?? "none",
                kept?.parameterReductionPercent.map { String(format: "%.1f%%", $0) } ?? dash,
                kept?.diceAfterFineTune.map { String(format: "%.4f", $0) } ?? dash]
    }

    /// "complete: 4 done, 0 failed" or "partial: 2 done, 1 failed, 1 running, 3 queued".
    public var statusLine: String {
        let counts = ["done", "failed", "running", "queued"].map { s in (s, jobs.filter { $0.status.rawValue == s }.count) }
        let complete = jobs.allSatisfy { $0.status == .done || $0.status == .failed }
        return (complete ? "complete" : "partial (sweep still going or stopped)") + ": "
            + counts.filter { $0.1 > 0 || $0.0 == "done" }.map { "\($0.1) \($0.0)" }.joined(separator: ", ") + " of \(jobs.count) jobs"
    }

    /// Rows in table order: each seed's baseline first, then its compression jobs (SVD by rank, ARSVD by tau).
    public var tableRows: [ResultRow] {
        rows.sorted { a, b in
            func key(_ r: ResultRow) -> (String, Int, Int, String, Double) {
                (GridAxis.groupLabel(r.axes), r.seed ?? 0, r.method == "baseline" ? 0 : 1, r.method == "baseline" ? "" : String(Palette.methods.firstIndex { $0.name == r.method } ?? Palette.methods.count),
                 Double(r.rank ?? 0) + (r.tau.map { -$0 } ?? 0))
            }
            return key(a) < key(b)
        }
    }

    static func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return f.string(from: date)
    }

    /// One line per failed or unfinished job: why, and where it got to.
    public var problemLines: [(job: String, status: String, text: String)] {
        jobs.filter { $0.status != .done && ($0.kind == "train" || $0.kind == "compress") }.map { j in
            let tries = j.attemptLog.compactMap { a in a.outcome.flatMap { $0 == .done ? nil : (a, $0) } }
                .map { a, outcome in "attempt \(a.attempt) on \(a.worker): \(outcome.rawValue)" + (a.reason.isEmpty ? "" : " (\(a.reason))") }
            var text: String
            switch j.status {
            case .failed: text = j.failureReason ?? "failed"
            case .running: text = "running on \(j.worker ?? "?") (attempt \(j.attempts) of at most \(j.maxAttempts))"
            case .queued: text = j.attempts == 0 ? "queued, not started" : "queued again after \(j.attempts) attempt(s)"
            case .done: text = ""
            }
            if !tries.isEmpty { text += "; " + tries.joined(separator: "; ") }
            return (j.id, j.status.rawValue, text)
        }
    }
}
