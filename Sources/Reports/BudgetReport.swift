import Compression
import Foundation
import Pipeline
import Sweep

/// A budget sweep's answer per baseline: the sensitivity table, and per budget the allocation (why:
/// predicted Dice, achieved cost, rank per layer) with its fine-tuned model next to uniform SVD at
/// the same budget.
public struct BudgetReport: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var fraction: Double
        public var allocateJob: String
        public var allocation: AllocationResult?
        /// The fine-tuned models (one pair per fine-tune configuration of the sweep).
        public var budgetRow: ResultRow?
        public var uniformRow: ResultRow?
    }

    public var baselineJob: String
    public var seed: Int?
    public var measure: String
    /// The merged table (from an allocation job's `sensitivity.json`); nil until one has run.
    public var table: SensitivityTable?
    public var entries: [Entry]

    /// `notes` gets a line for a stored table that cannot be read (the section then says the table is missing).
    public static func all(_ results: SweepResults, _ rows: [ResultRow], notes: inout [String]) -> [BudgetReport] {
        let allocations = results.jobs.filter { $0.kind == "allocate" && $0.allocationSpec != nil }
        var reports: [BudgetReport] = []
        for job in allocations {
            let spec = job.allocationSpec!
            let key = (spec.baselineJob, job.seed ?? seed(of: job.id))
            var report = reports.first { $0.baselineJob == key.0 && $0.seed == key.1 }
                ?? BudgetReport(baselineJob: key.0, seed: key.1, measure: spec.measure, table: nil, entries: [])
            if report.table == nil, let hash = job.artifacts[JobFiles.sensitivityTable] {
                let path = results.artifactPath(hash)
                do {
                    guard let data = FileManager.default.contents(atPath: path) else { throw ReportError("cannot read \(path)") }
                    report.table = try SweepResults.decode(SensitivityTable.self, String(decoding: data, as: UTF8.self), "\(path) (job \(job.id)'s \(JobFiles.sensitivityTable))")
                } catch {
                    notes.append("budget section without its sensitivity table: \(error)")
                }
            }
            // The allocation's compress jobs: `budget-<slug><fraction>-...` on the same baseline and seed.
            let stem = "\(BudgetSpec.slug(spec.measure))\(spec.fraction)-"
            let pairs = rows.filter { $0.method == "budget" && $0.job.hasPrefix("budget-" + stem) && $0.baselineJob == spec.baselineJob && $0.seed == key.1 }
            if pairs.isEmpty {
                report.entries.append(Entry(fraction: spec.fraction, allocateJob: job.id, allocation: job.allocationResult, budgetRow: nil, uniformRow: nil))
            }
            for b in pairs {
                let uniform = rows.first { $0.job == "uniform-svd-" + b.job.dropFirst("budget-".count) }
                report.entries.append(Entry(fraction: spec.fraction, allocateJob: job.id, allocation: job.allocationResult, budgetRow: b, uniformRow: uniform))
            }
            reports.removeAll { $0.baselineJob == key.0 && $0.seed == key.1 }
            reports.append(report)
        }
        return reports.map { r in
            var r = r
            r.entries.sort { $0.fraction < $1.fraction }
            return r
        }
    }

    /// `allocate-p0.2-s42` -> 42 (the seed tag ends every id).
    static func seed(of id: String) -> Int? {
        id.split(separator: "-").last.flatMap { $0.hasPrefix("s") ? Int($0.dropFirst()) : nil }
    }

    /// What the section shows and how the plans were chosen.
    public static func explanation(_ b: BudgetReport) -> String {
        let measured = b.table.map { t in
            "\(t.layers.count) layers x \(t.methods.joined(separator: "/")) measured at \(t.layers.reduce(0) { $0 + $1.options.count }) settings, each layer factorised alone and scored on the \(t.selectionSplit) split without fine-tuning"
        } ?? "the sensitivity table is not complete yet"
        return "Per-layer ranks from a sensitivity analysis (\(measured)), allocated by an exact knapsack to the least predicted Dice loss within each budget "
            + "(predicted: baseline validation Dice minus the chosen layers' losses), next to uniform SVD at the largest rank that fits the same budget. "
            + "Both fine-tuned, the final model chosen on validation; test Dice and recovery as in the comparison."
    }

    public var title: String { "Budget on \(baselineJob)" + (seed.map { " (seed \($0))" } ?? "") }

    /// The comparison: per budget, the allocation and uniform SVD, fine-tuned and chosen on validation.
    public static let header = ["Budget", "Model", "Params", "FLOPs", "Predicted val Dice", "Test Dice final", "Recovery", "Chosen"]

    public func rows() -> [[String]] {
        let dash = "–"
        func pct(_ x: Double?) -> String { x.map { String(format: "-%.1f%%", $0) } ?? dash }
        func dice(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? dash }
        var out: [[String]] = []
        for e in entries {
            let budget = String(format: "%@ %g%%", measure, 100 * e.fraction)
            let predicted = e.allocation.map { String(format: "%.4f (baseline %.4f)", $0.answer.predictedScore, $0.answer.baselineScore) } ?? dash
            let status = { (r: ResultRow?) in r.map { $0.status == "done" ? "" : " (\($0.status))" } ?? " (not planned)" }
            out.append([budget, "allocated" + status(e.budgetRow), pct(e.budgetRow?.parameterReductionPercent ?? e.allocation?.parameterReductionPercent),
                        pct(e.budgetRow?.flopReductionPercent ?? e.allocation?.flopReductionPercent), predicted,
                        dice(e.budgetRow?.diceAfterFineTune), e.budgetRow?.diceRecoveryPercent.map { String(format: "%.1f%%", $0) } ?? dash,
                        e.budgetRow?.chosen ?? dash])
            let rank = e.allocation?.uniformSVDRank.map { "uniform SVD r=\($0)" } ?? "uniform SVD (no rank fits)"
            out.append([budget, rank + status(e.uniformRow), pct(e.uniformRow?.parameterReductionPercent), pct(e.uniformRow?.flopReductionPercent), dash,
                        dice(e.uniformRow?.diceAfterFineTune), e.uniformRow?.diceRecoveryPercent.map { String(format: "%.1f%%", $0) } ?? dash,
                        e.uniformRow?.chosen ?? dash])
        }
        return out
    }

    /// Rank per layer per budget: `svd 6`, `tucker2 12`, `full`.
    public func layerHeader() -> [String] {
        ["Layer", "Shape"] + uniqueAllocations.map { String(format: "%@ %g%%", measure, 100 * $0.answer.fraction) }
    }

    public func layerRows() -> [[String]] {
        let allocations = uniqueAllocations
        guard let first = allocations.first else { return [] }
        return first.answer.choices.indices.map { i in
            let name = first.answer.choices[i].layer
            let shape = table?.layers.first { $0.name == name }?.kernelShape.map(String.init).joined(separator: "x") ?? ""
            return [name, shape] + allocations.map { a in
                let c = a.answer.choices[i]
                return c.method.map { "\($0) \(c.rank ?? 0)" } ?? "full"
            }
        }
    }

    var uniqueAllocations: [AllocationResult] {
        var seen = Set<Double>(), out: [AllocationResult] = []
        for e in entries { if let a = e.allocation, seen.insert(a.answer.fraction).inserted { out.append(a) } }
        return out
    }

    /// The sensitivity heatmap: one row per layer, one column per candidate (methods side by side,
    /// ranks ascending), coloured by the validation Dice lost with that layer alone factorised.
    public func heatmap(index: Int) -> Chart? {
        guard let table, !table.layers.isEmpty else { return nil }
        let methods = table.methods
        let columns = methods.map { m in table.layers.map { $0.options.filter { $0.method == m }.count }.max() ?? 0 }
        let cell = 34.0, rowHeight = 18.0, left = 120.0, top = 44.0, gap = 14.0
        let width = left + columns.reduce(0) { $0 + Double($1) * cell } + gap * Double(max(0, methods.count - 1)) + 150
        let height = top + Double(table.layers.count) * rowHeight + 40
        let doc = SVGDocument(width: width, height: height, title: "Sensitivity: validation Dice lost per layer and rank")
        let worst = max(0.05, table.layers.flatMap { $0.options.map { table.baselineScore - $0.score } }.max() ?? 0)
        func colour(_ drop: Double) -> String {
            // White (no loss) to red (the worst loss measured), on a square-root scale so small losses show.
            let t = min(1, max(0, drop) / worst).squareRoot()
            let r = 255 - Int(t * 40), gb = Int((1 - t) * 235 + 20)
            return String(format: "#%02x%02x%02x", r, gb, gb)
        }
        var x0 = left
        for (m, method) in methods.enumerated() {
            doc.text(x0, top - 26, method, size: 12)
            for (r, layer) in table.layers.enumerated() {
                let y = top + Double(r) * rowHeight
                if m == 0 { doc.text(left - 6, y + rowHeight - 5, layer.name, size: 10, anchor: .end) }
                for (c, option) in layer.options.filter({ $0.method == method }).enumerated() {
                    let drop = table.baselineScore - option.score
                    doc.rect(x0 + Double(c) * cell, y, cell - 1, rowHeight - 1, fill: colour(drop))
                    doc.text(x0 + Double(c) * cell + cell / 2, y + rowHeight - 5, "\(option.rank)", size: 9, anchor: .middle)
                }
            }
            doc.text(x0, top - 10, "rank (cell) by candidate →", size: 9)
            x0 += Double(columns[m]) * cell + gap
        }
        // Legend: the scale's ends.
        let lx = x0 + 10
        for (i, d) in [0, worst / 4, worst / 2, worst].enumerated() {
            doc.rect(lx, top + Double(i) * 20, 16, 16, fill: colour(d))
            doc.text(lx + 22, top + Double(i) * 20 + 12, String(format: "%.3f Dice lost", d), size: 10)
        }
        let caption = String(format: "Each cell: the model with that layer alone factorised at the rank shown, the rest full, scored on the %@ split without fine-tuning (baseline %.4f); darker = more Dice lost (worst %.3f). %d layers x %d measurements.",
                             table.selectionSplit, table.baselineScore, worst, table.layers.count, table.layers.reduce(0) { $0 + $1.options.count })
        return Chart(id: "sensitivity-\(index)", title: "Sensitivity heatmap — \(title)", caption: caption, svg: doc.render())
    }
}
