import Foundation
import Pipeline

/// Builds the whole report folder from a sweep's state dir, atomically: everything is written into
/// a fresh temporary folder beside the destination, which then replaces it by rename (the old
/// report, if any, is moved aside first and removed after), so a reader never sees a half-written report.
public struct ReportWriter {
    public var stateDir: String
    /// Default: `stateDir/report`.
    public var outDir: String
    public var overlays: OverlayRenderer

    public init(stateDir: String, outDir: String? = nil, overlays: OverlayRenderer = OverlayRenderer()) {
        self.stateDir = stateDir
        self.outDir = outDir ?? (stateDir + "/report")
        self.overlays = overlays
    }

    public struct Summary: Sendable {
        public var outDir: String
        public var statusLine: String
        public var overlays: Int
        public var notes: [String]
    }

    public static let files = (csv: "results.csv", json: "results.json", markdown: "report.md", html: "report.html", overlays: "overlays")

    @discardableResult
    public func write(now: Date = Date()) throws -> Summary {
        let results = try SweepResults.load(stateDir: stateDir)
        let rows = ResultsTable.rows(results)
        let recommendation = Recommendation(rows: rows)
        let parent = (outDir as NSString).deletingLastPathComponent
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: parent.isEmpty ? "." : parent, withIntermediateDirectories: true) } catch {
            throw ReportError("cannot create \(parent): \(error.localizedDescription)")
        }
        let tmp = outDir + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? fm.removeItem(atPath: tmp) }
        do { try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false) } catch {
            throw ReportError("cannot create \(tmp): \(error.localizedDescription)")
        }

        var notes: [String] = []
        var overlayImages: [OverlayImage] = []
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
        let content = ReportContent(stateDir: stateDir, generated: now, rows: rows, recommendation: recommendation,
                                    charts: Charts.all(results, rows), overlays: overlayImages, notes: notes, jobs: results.jobs)
        try save(ResultsTable.csv(rows), tmp + "/" + ReportWriter.files.csv)
        try save(json(content), tmp + "/" + ReportWriter.files.json)
        try save(MarkdownReport.render(content), tmp + "/" + ReportWriter.files.markdown)
        try save(HTMLReport.render(content, overlayData: overlayData), tmp + "/" + ReportWriter.files.html)
        try replace(outDir, with: tmp)
        return Summary(outDir: outDir, statusLine: content.statusLine, overlays: overlayImages.count, notes: notes)
    }

    /// `results.json`: the rows, the recommendation and its thresholds, the sweep's state.
    struct JSONReport: Encodable {
        var stateDir: String
        var generated: String
        var complete: Bool
        var status: String
        var thresholds: [String: Double]
        var recommendation: Recommendation
        var rows: [ResultRow]
        var overlays: [OverlayImage]
        var notes: [String]
    }

    func json(_ c: ReportContent) throws -> String {
        let report = JSONReport(stateDir: c.stateDir, generated: ReportContent.timestamp(c.generated),
                                complete: c.jobs.allSatisfy { $0.status == .done || $0.status == .failed }, status: c.statusLine,
                                thresholds: ["recoveryPercent": Recommendation.recoveryThreshold,
                                             "weakBaselineDice": Recommendation.weakBaselineDice],
                                recommendation: c.recommendation, rows: c.rows, overlays: c.overlays, notes: c.notes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    func save(_ text: String, _ path: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw ReportError("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Puts the finished `tmp` folder at `dest`: old report renamed aside, new one renamed in, old removed.
    func replace(_ dest: String, with tmp: String) throws {
        let fm = FileManager.default
        var old: String? = nil
        if fm.fileExists(atPath: dest) {
            let aside = dest + ".old-\(getpid())-\(UInt32.random(in: 0 ... .max))"
            guard rename(dest, aside) == 0 else { throw ReportError("cannot move the previous report \(dest) aside: \(String(cString: strerror(errno)))") }
            old = aside
        }
        guard rename(tmp, dest) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old, dest) }
            throw ReportError("cannot move the new report into \(dest): \(reason)")
        }
        if let old { try? fm.removeItem(atPath: old) }
    }
}
