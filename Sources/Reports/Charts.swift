import Foundation

/// One chart of the report: an inline SVG and the sentence that says what it shows.
public struct Chart: Sendable {
    /// Anchor id in the HTML (`pareto`, `finetune`, `ranks`, `energy`, `curves`).
    public var id: String
    public var title: String
    public var caption: String
    public var svg: String
}

/// The report's five charts, built from the rows and the stored results.
public enum Charts {
    public static let width = 860.0

    public static func all(_ results: SweepResults, _ rows: [ResultRow]) -> [Chart] {
        [pareto(rows), methodFronts(rows), fineTune(rows), ranks(results), energy(results), curves(results)]
    }

    /// Mean baseline Dice over the finished baselines (one per seed).
    static func baselineDice(_ rows: [ResultRow]) -> Double? {
        let d = rows.filter { $0.method == "baseline" }.compactMap(\.diceAfterFineTune)
        return d.isEmpty ? nil : d.reduce(0, +) / Double(d.count)
    }

    static func baselineReferences(_ rows: [ResultRow], threshold: Double) -> [ReferenceLine] {
        guard let b = baselineDice(rows) else { return [] }
        let seeds = rows.filter { $0.method == "baseline" && $0.diceAfterFineTune != nil }.count
        return [
            ReferenceLine(value: b, label: String(format: "baseline Dice %.3f%@", b, seeds > 1 ? " (mean of \(seeds) seeds)" : ""),
                          colour: Palette.baseline),
            ReferenceLine(value: b * threshold / 100, label: String(format: "%.0f%% of baseline", threshold),
                          colour: Palette.threshold, dash: "2 3"),
        ]
    }

    /// "not shown: 1 failed, 2 queued" for jobs without numbers.
    static func missingNote(_ rows: [ResultRow]) -> String? {
        let missing = rows.filter { $0.kind == "compress" && $0.status != "done" }
        guard !missing.isEmpty else { return nil }
        let counts = Dictionary(grouping: missing, by: \.status).sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key)" }
        return "not shown (no result yet): " + counts.joined(separator: ", ")
    }

    // MARK: 1. Dice after fine-tuning against parameter reduction

    /// `group`: a baseline configuration's label; its chart gets its own id and title.
    static func pareto(_ rows: [ResultRow], group: (index: Int, label: String)? = nil) -> Chart {
        let done = rows.filter { $0.kind == "compress" && $0.diceAfterFineTune != nil && $0.parameterReductionPercent != nil }
        func series(_ method: String, _ name: String, _ shape: MarkerShape) -> Series {
            let mine = done.filter { $0.method == method }
            var s = Series(name: name, colour: Palette.method(method),
                           points: mine.map { ($0.parameterReductionPercent!, $0.diceAfterFineTune!) }, line: false, markers: shape)
            s.pointLabels = mine.map { $0.setting + (Set(rows.compactMap(\.seed)).count > 1 ? " s\($0.seed ?? 0)" : "") }
            s.tooltips = mine.map { String(format: "%@ (%@): Dice %.4f, params -%.1f%%", $0.label, $0.job, $0.diceAfterFineTune!, $0.parameterReductionPercent!) }
            return s
        }
        let points = done.map { (x: $0.parameterReductionPercent!, y: $0.diceAfterFineTune!) }
        var front = Series(name: "Pareto front", colour: Palette.front, points: Pareto.front(points).map { points[$0] }, dash: "5 3")
        front.width = 2
        var panel = XYPanel(title: group.map { "Dice after fine-tuning vs parameter reduction: \($0.label)" } ?? "1. Dice after fine-tuning vs parameter reduction",
                            xLabel: "parameter reduction (% of baseline parameters)", yLabel: "test Dice after fine-tuning (0–1)",
                            series: [front] + shownMethods(done).map { series($0.name, $0.label, $0.shape) })
        panel.references = baselineReferences(rows, threshold: Recommendation.recoveryThreshold)
        panel.xDomain = LinearScale.domain(points.map(\.x), including: [0], within: (0, 100))
        panel.yBounds = (0, 1)
        let doc = SVGDocument(width: width, height: 430, title: panel.title)
        let r = PlotRect(x: 70, y: 40, width: 560, height: 320)
        panel.draw(doc, in: r)
        var legend = panel.series.reversed().map(\.legendEntry)
        legend += panel.references.map { LegendEntry($0.label, colour: $0.colour, sample: .line(dash: $0.dash)) }
        ChartDrawing.legend(doc, legend, x: r.right + 20, y: r.y)
        if let note = missingNote(rows) { doc.text(r.x, r.bottom + 52, note, size: 10.5, fill: "#b00020") }
        return Chart(id: group.map { "pareto-\($0.index + 1)" } ?? "pareto", title: panel.title, caption:
            "Each point is one compression job: its parameter reduction against its test Dice after fine-tuning; each method in its own colour and shape. "
            + "The dashed green line joins the Pareto front (no other job has both a larger reduction and a higher Dice); the grey line is the baseline's Dice, the pink dotted line \(Int(Recommendation.recoveryThreshold))% of it.",
            svg: doc.render())
    }

    /// SVD and ARSVD always (the seed's grid), the other methods when they have results.
    static func shownMethods(_ done: [ResultRow]) -> [Palette.MethodStyle] {
        Palette.methods.filter { style in ["svd", "arsvd"].contains(style.name) || done.contains { $0.method == style.name } }
    }

    // MARK: 1b. Each method's Pareto front, parameters and FLOPs

    /// Two panels, parameter and FLOP reduction against Dice after fine-tuning: per method, the jobs
    /// on its own Pareto front joined in its colour and shape, so methods compare at equal budgets.
    static func methodFronts(_ rows: [ResultRow]) -> Chart {
        let done = rows.filter { $0.kind == "compress" && $0.diceAfterFineTune != nil }
        let methods = shownMethods(done)
        let doc = SVGDocument(width: width, height: 780, title: "Pareto front of each method: parameters and FLOPs against Dice")
        var legend: [LegendEntry] = []
        for (index, axis) in [("parameter reduction (% of baseline parameters)", \ResultRow.parameterReductionPercent),
                              ("FLOP reduction (% of baseline FLOPs per image)", \ResultRow.flopReductionPercent)].enumerated() {
            var all: [Double] = []
            let series: [Series] = methods.map { m in
                let mine = done.filter { $0.method == m.name && $0[keyPath: axis.1] != nil }
                let points = mine.map { (x: $0[keyPath: axis.1]!, y: $0.diceAfterFineTune!) }
                all += points.map(\.x)
                let front = Pareto.front(points).sorted { points[$0].x < points[$1].x }
                var s = Series(name: m.label + " front", colour: m.colour, points: front.map { points[$0] }, line: true, markers: m.shape)
                s.pointLabels = front.map { mine[$0].setting }
                s.tooltips = front.map { String(format: "%@ (%@): Dice %.4f, -%.1f%%", mine[$0].label, mine[$0].job, points[$0].y, points[$0].x) }
                return s
            }
            var panel = XYPanel(title: index == 0 ? "1b. Pareto fronts per method: parameters" : "1c. Pareto fronts per method: FLOPs",
                                xLabel: axis.0, yLabel: "test Dice after fine-tuning (0–1)", series: series)
            panel.references = baselineReferences(rows, threshold: Recommendation.recoveryThreshold)
            panel.xDomain = LinearScale.domain(all, including: [0], within: (0, 100))
            panel.yBounds = (0, 1)
            let r = PlotRect(x: 70, y: 40 + Double(index) * 380, width: 560, height: 300)
            panel.draw(doc, in: r)
            if index == 0 {
                legend = panel.series.map(\.legendEntry) + panel.references.map { LegendEntry($0.label, colour: $0.colour, sample: .line(dash: $0.dash)) }
                ChartDrawing.legend(doc, legend, x: r.right + 20, y: r.y)
            }
        }
        return Chart(id: "method-fronts", title: "Pareto front of each method: parameters and FLOPs against Dice", caption:
            "For each method, the jobs no other job of that method beats on both reduction and Dice, joined in the method's colour and shape: "
            + "above, against the parameter reduction; below, against the FLOP reduction. A front further right at the same Dice compresses more.",
            svg: doc.render())
    }

    // MARK: 2. Dice before and after fine-tuning, per job

    static func fineTune(_ rows: [ResultRow]) -> Chart {
        let jobs = rows.filter { $0.kind == "compress" }
        var panel = BarPanel(title: "2. Dice before and after fine-tuning, per job", xLabel: "compression job (method, rank r or energy tau)",
                             yLabel: "test Dice (0–1)", categories: jobs.map { $0.label + (Set(rows.compactMap(\.seed)).count > 1 ? " s\($0.seed ?? 0)" : "") },
                             seriesNames: ["before FT (factorised)", "before FT (BN recalibrated)", "after fine-tuning"],
                             colours: ["#bdbdbd", "#9ecae1", "#08519c"],
                             values: jobs.map { [$0.diceBeforeFineTune, $0.diceRecalibrated, $0.diceAfterFineTune] })
        panel.references = Array(baselineReferences(rows, threshold: Recommendation.recoveryThreshold).prefix(1))
        panel.missingNotes = jobs.map { $0.status == "done" ? "" : $0.status }
        panel.yBounds = (0, 1)
        let longest = Double(panel.categories.map(\.count).max() ?? 0) * 6
        let slantRoom = longest > 560 / Double(max(1, jobs.count)) ? longest * 0.5 : 0
        let doc = SVGDocument(width: width, height: 400 + slantRoom, title: panel.title)
        let r = PlotRect(x: 70, y: 40, width: 560, height: 300)
        panel.draw(doc, in: r)
        var legend = zip(panel.seriesNames, panel.colours).map { LegendEntry($0.0, colour: $0.1, sample: .box) }
        legend += panel.references.map { LegendEntry($0.label, colour: $0.colour, sample: .line(dash: $0.dash)) }
        ChartDrawing.legend(doc, legend, x: r.right + 20, y: r.y)
        return Chart(id: "finetune", title: panel.title, caption:
            "For every compression job, three bars: test Dice right after factorisation, after BatchNorm recalibration (still no training), and after fine-tuning; "
            + "the grey line is the baseline. Jobs without a result are marked with their state (failed, running, queued).",
            svg: doc.render())
    }
}
