import Basics
import Compression
import Foundation
import Pipeline

/// Builds the whole report folder from a sweep's state dir, atomically (`AtomicFile.replaceDirectory`):
/// a reader sees the previous report or the new one, never a half-written one.
public struct ReportWriter {
    public var stateDir: String
    /// Default: `stateDir/report`.
    public var outDir: String
    public var overlays: OverlayRenderer
    /// Which models go to `models/` (`ReportModels`).
    public var models: ReportModelChoice

    public init(stateDir: String, outDir: String? = nil, overlays: OverlayRenderer = OverlayRenderer(), models: ReportModelChoice = .chosen) {
        self.stateDir = stateDir
        self.outDir = outDir ?? (stateDir + "/report")
        self.overlays = overlays
        self.models = models
    }

    public struct Summary: Sendable {
        public var outDir: String
        public var statusLine: String
        public var overlays: Int
        public var notes: [String]
        /// Models put in `models/` (paths relative to `outDir`).
        public var models: [String]
    }

    public static let files = (csv: "results.csv", json: "results.json", markdown: "report.md", html: "report.html", overlays: "overlays")

    @discardableResult
    public func write(now: Date = Date()) throws -> Summary {
        let results = try SweepResults.load(stateDir: stateDir)
        var rows = ResultsTable.rows(results)
        let recommendation = Recommendation(rows: rows)
        let fm = FileManager.default
        var notes: [String] = []
        var overlayImages: [OverlayImage] = []
        var statusLine = ""
        do {
            try AtomicFile.replaceDirectory(at: outDir) { tmp in
                try ReportModels.write(models, rows: &rows, results: results, recommendation: recommendation, into: tmp)
                do {
                    overlayImages = try overlays.render(results, into: tmp + "/" + ReportWriter.files.overlays)
                    if overlayImages.isEmpty { notes.append("no overlays: no baseline has finished yet") }
                } catch {
                    notes.append("overlays skipped: \(error)")
                }
                var overlayData: [String: Data] = [:]
                for o in overlayImages {
                    overlayData[o.file] = fm.contents(atPath: tmp + "/" + ReportWriter.files.overlays + "/" + o.file)
                }
                var content = ReportContent(stateDir: stateDir, generated: now, rows: rows, recommendation: recommendation,
                                            charts: Charts.all(results, rows), overlays: overlayImages, notes: notes, jobs: results.jobs)
                content.targetAnswers = TargetAnswer.all(results)
                content.budgets = BudgetReport.all(results, rows, notes: &content.notes)
                content.budgetCharts = content.budgets.enumerated().compactMap { $0.element.heatmap(index: $0.offset) }
                // The sensitivity table of each baseline, for a later sweep's `budget.sensitivity_table`.
                for (i, budget) in content.budgets.enumerated() where budget.table != nil {
                    let name = content.budgets.count == 1 ? "sensitivity.json" : "sensitivity-\(i + 1).json"
                    try save(try tableJSON(budget.table!), tmp + "/" + name)
                }
                let groups = content.groups
                if groups.count > 1 {
                    content.groupCharts = groups.enumerated().map { Charts.pareto($0.element.rows, group: ($0.offset, $0.element.label)) }
                }
                statusLine = content.statusLine
                try save(ResultsTable.csv(rows), tmp + "/" + ReportWriter.files.csv)
                try save(json(content), tmp + "/" + ReportWriter.files.json)
                try save(MarkdownReport.render(content), tmp + "/" + ReportWriter.files.markdown)
                try save(HTMLReport.render(content, overlayData: overlayData), tmp + "/" + ReportWriter.files.html)
            }
        } catch let e as FileError { throw ReportError(e.description) }
        return Summary(outDir: outDir, statusLine: statusLine, overlays: overlayImages.count, notes: notes,
                       models: rows.compactMap(\.model).sorted())
    }

    /// `results.json`: the rows, the recommendation and its thresholds, the sweep's state.
    struct JSONReport: Encodable {
        var stateDir: String
        var generated: String
        var complete: Bool
        var status: String
        var thresholds: [String: Double]
        var recommendation: Recommendation
        var targetSearches: [TargetAnswer]
        var budgets: [BudgetReport]
        var rows: [ResultRow]
        var overlays: [OverlayImage]
        var notes: [String]
    }

    func json(_ c: ReportContent) throws -> String {
        let report = JSONReport(stateDir: c.stateDir, generated: ReportContent.timestamp(c.generated),
                                complete: c.jobs.allSatisfy { $0.status == .done || $0.status == .failed }, status: c.statusLine,
                                thresholds: ["recoveryPercent": Recommendation.recoveryThreshold,
                                             "weakBaselineDice": Recommendation.weakBaselineDice],
                                recommendation: c.recommendation, targetSearches: c.targetAnswers, budgets: c.budgets, rows: c.rows, overlays: c.overlays, notes: c.notes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    func tableJSON(_ table: SensitivityTable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(table), as: UTF8.self) + "\n"
    }

    func save(_ text: String, _ path: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw ReportError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}
