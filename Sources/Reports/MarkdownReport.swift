import Foundation

/// `report.md`: the comparison table, the recommendation, failed and unfinished jobs, overlays.
public enum MarkdownReport {
    public static func render(_ c: ReportContent) -> String {
        var md: [String] = []
        md.append("# ranksweep report\n")
        md.append("State dir `\(c.stateDir)`, generated \(ReportContent.timestamp(c.generated)). Sweep \(c.statusLine).\n")
        md.append("## Comparison\n")
        md.append("Test-split Dice (per-image mean). Before FT: right after factorisation; Final: the model the job kept, "
                  + "the candidate with the best validation Dice (Chosen: factorised, recalibrated or a fine-tuning epoch); "
                  + "Recovery: Final / baseline Dice; reductions against the baseline; latency: median ms per image, measured on the host that ran the job (an outcome of that machine; it decided nothing); "
                  + "speed-up against the baseline timed in the same job.\n")
        let header = ComparisonTable.header(multiSeed: c.multiSeed, axes: c.axes)
        md.append(row(header))
        md.append(row(header.enumerated().map { $0.offset < (c.multiSeed ? 3 : 2) || $0.offset == header.count - 1 ? "---" : "---:" }))
        for r in c.tableRows { md.append(row(ComparisonTable.cells(r, multiSeed: c.multiSeed, axes: c.axes))) }
        md.append("")
        if !c.targetAnswers.isEmpty {
            md.append("## Targeted search\n")
            md.append("The most compressive setting whose Dice after fine-tuning keeps the target share of the baseline's, and the next more compressive one that misses it (the bracket).\n")
            for a in c.targetAnswers { md.append("- " + escape(a.sentence)) }
            md.append("")
        }
        for budget in c.budgets {
            md.append("## \(budget.title)\n")
            md.append(BudgetReport.explanation(budget) + "\n")
            md.append(row(BudgetReport.header))
            md.append(row(BudgetReport.header.enumerated().map { $0.offset < 2 || $0.offset == 7 ? "---" : "---:" }))
            for cells in budget.rows() { md.append(row(cells)) }
            let layerHeader = budget.layerHeader()
            if layerHeader.count > 2 {
                md.append("\nRank per layer (`full`: kept whole):\n")
                md.append(row(layerHeader))
                md.append(row(layerHeader.map { _ in "---" }))
                for cells in budget.layerRows() { md.append(row(cells)) }
            }
            md.append("")
        }
        let groups = c.groups
        if groups.count > 1 {
            md.append("## By baseline configuration\n")
            md.append("Most compressive kept: the largest parameter reduction whose Dice after fine-tuning keeps \(Int(Recommendation.recoveryThreshold))% of its own baseline's.\n")
            md.append(row(ReportContent.groupSummaryHeader))
            md.append(row(ReportContent.groupSummaryHeader.enumerated().map { $0.offset == 0 || $0.offset == 2 ? "---" : "---:" }))
            for g in groups { md.append(row(c.groupSummaryCells(g))) }
            for g in groups {
                md.append("\n### \(g.label)\n")
                md.append(row(header))
                md.append(row(header.enumerated().map { $0.offset < (c.multiSeed ? 3 : 2) || $0.offset == header.count - 1 ? "---" : "---:" }))
                for r in g.rows { md.append(row(ComparisonTable.cells(r, multiSeed: c.multiSeed, axes: c.axes))) }
            }
            md.append("")
        }
        md.append("## Which method works best\n")
        md.append(c.recommendation.paragraph + "\n")
        let problems = c.problemLines
        let failed = problems.filter { $0.status == "failed" }, pending = problems.filter { $0.status != "failed" }
        if !failed.isEmpty {
            md.append("## Failed jobs\n")
            for p in failed { md.append("- `\(p.job)`: \(escape(p.text))") }
            md.append("")
        }
        if !pending.isEmpty {
            md.append("## Not finished\n")
            for p in pending { md.append("- `\(p.job)` (\(p.status)): \(escape(p.text))") }
            md.append("")
        }
        md.append("## Charts\n")
        md.append("In `report.html` (self-contained, opens in any browser):\n")
        for chart in c.charts + c.groupCharts + c.budgetCharts { md.append("- **\(chart.title)** — \(chart.caption)") }
        md.append("")
        md.append("## Overlays\n")
        if c.overlays.isEmpty { md.append("None written.") }
        for o in c.overlays {
            md.append("- `overlays/\(o.file)` (\(o.width)x\(o.height)): " + OverlayLegend.text(o.panels))
        }
        for note in c.notes { md.append("\nNote: \(escape(note))") }
        md.append("\nFiles: `results.csv` and `results.json` hold every number of the table and more (IoU, recalibrated Dice, FLOPs, times, workers, attempts).")
        return md.joined(separator: "\n") + "\n"
    }

    static func row(_ cells: [String]) -> String { "| " + cells.map(escape).joined(separator: " | ") + " |" }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}

/// The panels of an overlay picture in words, with the boundary colours Imaging.Overlay draws.
public enum OverlayLegend {
    public static let colourNames = ["red", "yellow", "magenta", "cyan", "orange", "blue"]

    public static func text(_ panels: [String]) -> String {
        panels.enumerated().map { i, p in
            switch i {
            case 0: return p
            case 1: return p + " (green)"
            default: return p + " (" + colourNames[(i - 2) % colourNames.count] + ")"
            }
        }.joined(separator: " | ")
    }
}
