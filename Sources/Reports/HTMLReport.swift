import Foundation

/// `report.html`: one self-contained XHTML file (parses as XML): table, recommendation, the five
/// inline SVG charts, overlays embedded as `data:` PNGs. No scripts, no network.
public enum HTMLReport {
    static let style = """
        body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 960px; color: #222; line-height: 1.45; }
        h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
        table { border-collapse: collapse; font-size: 13px; } th, td { padding: 4px 8px; border-bottom: 1px solid #e5e5e5; }
        th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.baseline td { font-weight: bold; background: #fafafa; }
        .status-failed { color: #b00020; font-weight: bold; } .status-running { color: #8a6d00; } .status-queued { color: #777; }
        figure { margin: 24px 0; } figcaption { font-size: 13px; color: #444; max-width: 860px; }
        .meta { color: #555; font-size: 13px; } img.overlay { image-rendering: pixelated; border: 1px solid #ccc; }
        code { background: #f4f4f4; padding: 0 3px; }
        """

    public static func render(_ c: ReportContent, overlayData: [String: Data]) -> String {
        var h: [String] = []
        h.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        h.append("<!DOCTYPE html>")
        h.append("<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">")
        h.append("<head><meta charset=\"utf-8\"/><title>ranksweep report</title><style>\(style)</style></head>")
        h.append("<body>")
        h.append("<h1>ranksweep report</h1>")
        h.append("<p class=\"meta\">State dir <code>\(e(c.stateDir))</code>, generated \(e(ReportContent.timestamp(c.generated))). Sweep \(e(c.statusLine)).</p>")

        h.append("<h2>Comparison</h2>")
        h.append("<p class=\"meta\">Test-split Dice (per-image mean). Before FT: right after factorisation; Final: the model the job kept, the candidate with the best validation Dice (Chosen: factorised, recalibrated or a fine-tuning epoch); Recovery: Final / baseline Dice; "
                 + "reductions against the baseline; latency: median ms per image, measured on the host that ran the job (an outcome of that machine; it decided nothing); speed-up against the baseline timed in the same job.</p>")
        h.append("<table>")
        let header = ComparisonTable.header(multiSeed: c.multiSeed, axes: c.axes)
        h.append("<thead><tr>" + header.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>")
        let textColumns = c.multiSeed ? 3 : 2
        for r in c.tableRows {
            let cells = ComparisonTable.cells(r, multiSeed: c.multiSeed, axes: c.axes)
            let tds = cells.enumerated().map { i, v -> String in
                if i == cells.count - 1 { return "<td class=\"status-\(e(r.status))\">\(e(v))</td>" }
                return i < textColumns ? "<td>\(e(v))</td>" : "<td class=\"num\">\(e(v))</td>"
            }
            h.append("<tr\(r.method == "baseline" ? " class=\"baseline\"" : "") title=\"\(e(r.job))\">" + tds.joined() + "</tr>")
        }
        h.append("</tbody></table>")

        if !c.targetAnswers.isEmpty {
            h.append("<h2>Targeted search</h2>")
            h.append("<p class=\"meta\">The most compressive setting whose Dice after fine-tuning keeps the target share of the baseline's, and the next more compressive one that misses it (the bracket).</p><ul>")
            for a in c.targetAnswers { h.append("<li>\(e(a.sentence))</li>") }
            h.append("</ul>")
        }
        for (i, budget) in c.budgets.enumerated() {
            h.append("<h2>\(e(budget.title))</h2><p class=\"meta\">\(e(BudgetReport.explanation(budget)))</p>")
            h.append("<table><thead><tr>" + BudgetReport.header.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>")
            for cells in budget.rows() { h.append("<tr>" + cells.map { "<td>\(e($0))</td>" }.joined() + "</tr>") }
            h.append("</tbody></table>")
            let layerHeader = budget.layerHeader()
            if layerHeader.count > 2 {
                h.append("<h3>Rank per layer</h3><table><thead><tr>" + layerHeader.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>")
                for cells in budget.layerRows() { h.append("<tr>" + cells.map { "<td>\(e($0))</td>" }.joined() + "</tr>") }
                h.append("</tbody></table>")
            }
            if let chart = c.budgetCharts.first(where: { $0.id == "sensitivity-\(i)" }) {
                h.append("<figure id=\"\(e(chart.id))\">" + chart.svg + "<figcaption>\(e(chart.caption))</figcaption></figure>")
            }
        }
        let groups = c.groups
        if groups.count > 1 {
            h.append("<h2>By baseline configuration</h2>")
            h.append("<p class=\"meta\">Most compressive kept: the largest parameter reduction whose Dice after fine-tuning keeps \(Int(Recommendation.recoveryThreshold))% of its own baseline's.</p>")
            h.append("<table><thead><tr>" + ReportContent.groupSummaryHeader.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>")
            for g in groups { h.append("<tr>" + c.groupSummaryCells(g).map { "<td>\(e($0))</td>" }.joined() + "</tr>") }
            h.append("</tbody></table>")
            for (i, g) in groups.enumerated() {
                h.append("<h3>\(e(g.label))</h3><table>")
                h.append("<thead><tr>" + header.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>")
                for r in g.rows {
                    h.append("<tr\(r.method == "baseline" ? " class=\"baseline\"" : "") title=\"\(e(r.job))\">"
                             + ComparisonTable.cells(r, multiSeed: c.multiSeed, axes: c.axes).map { "<td>\(e($0))</td>" }.joined() + "</tr>")
                }
                h.append("</tbody></table>")
                if i < c.groupCharts.count {
                    let chart = c.groupCharts[i]
                    h.append("<figure id=\"\(e(chart.id))\">" + chart.svg + "<figcaption>\(e(chart.caption))</figcaption></figure>")
                }
            }
        }

        h.append("<h2>Which method works best</h2>")
        h.append("<p>" + c.recommendation.sentences.map(e).joined(separator: " ") + "</p>")

        let problems = c.problemLines
        if !problems.isEmpty {
            h.append("<h2>Failed and unfinished jobs</h2><ul>")
            for p in problems {
                h.append("<li><code>\(e(p.job))</code> <span class=\"status-\(e(p.status))\">\(e(p.status))</span>: \(e(p.text))</li>")
            }
            h.append("</ul>")
        }

        h.append("<h2>Charts</h2>")
        for chart in c.charts {
            h.append("<figure id=\"\(e(chart.id))\">")
            h.append(chart.svg)
            h.append("<figcaption>\(e(chart.caption))</figcaption></figure>")
        }

        h.append("<h2>Overlays</h2>")
        if c.overlays.isEmpty { h.append("<p>None written.</p>") }
        for o in c.overlays {
            h.append("<figure>")
            if let data = overlayData[o.file] {
                h.append("<img class=\"overlay\" alt=\"\(e(o.file))\" width=\"\(o.width * 2)\" height=\"\(o.height * 2)\" src=\"data:image/png;base64,\(data.base64EncodedString())\"/>")
            }
            h.append("<figcaption><code>overlays/\(e(o.file))</code>: \(e(OverlayLegend.text(o.panels))). Boundaries drawn at probability 0.5.</figcaption></figure>")
        }
        for note in c.notes { h.append("<p class=\"meta\">Note: \(e(note))</p>") }
        h.append("<p class=\"meta\">Every number is also in <code>results.csv</code> and <code>results.json</code> beside this file.</p>")
        h.append("</body></html>")
        return h.joined(separator: "\n") + "\n"
    }

    static func e(_ s: String) -> String { xmlEscape(s) }
}
