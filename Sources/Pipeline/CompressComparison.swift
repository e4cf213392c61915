import Basics
import Compression
import CSupport
import Foundation

/// `ranksweep compress`'s results side by side, one row per setting: printed as Markdown and
/// kept as comparison.csv/comparison.md beside the settings' folders.
public struct CompressComparison {
    public let rows: [(CompressionMethod, CompressResult)]
    /// Each setting's folder, relative to the output folder.
    public let folder: (CompressionMethod) -> String

    public init(rows: [(CompressionMethod, CompressResult)], folder: @escaping (CompressionMethod) -> String) {
        (self.rows, self.folder) = (rows, folder)
    }

    /// `ranksweep compress` with several settings: each in turn with `spec`'s other settings, into
    /// its own subfolder of `outDir` (or `outDir` itself for a single setting), until a signal;
    /// then the table, printed.
    public static func run(_ methods: [CompressionMethod], _ spec: CompressSpec, baselinePath: String, outDir: String,
                           progress: ProgressDisplay) throws -> CompressComparison {
        let folder: (CompressionMethod) -> String = { methods.count == 1 ? "." : $0.slug }   // relative, for the CSV
        var rows: [(CompressionMethod, CompressResult)] = []
        for method in methods {
            var spec = spec
            spec.method = method
            let dir = outputFolder(of: method, among: methods, in: outDir)
            if Log.level <= .info { progress.line("== \(method.description) -> \(dir)") }
            let r = try CompressJob.run(spec, baselinePath: baselinePath, outDir: dir, events: trainingEventPrinter(progress, label: "fine-tune"))
            warnIfNothingFactorised(method, r)
            rows.append((method, r))
            if csupport_stop_requested() != 0 { break }
        }
        let comparison = CompressComparison(rows: rows, folder: folder)
        progress.line("")
        for line in comparison.markdownLines { progress.line(line) }
        return comparison
    }

    /// Where one setting's files go: `outDir` itself for a single setting, else its own subfolder
    /// (`svd_r50`, `arsvd_tau0.9`, …).
    public static func outputFolder(of method: CompressionMethod, among methods: [CompressionMethod], in outDir: String) -> String {
        methods.count == 1 ? outDir : outDir + "/" + method.slug
    }

    /// The table is a result: kept beside the settings' folders as comparison.csv and comparison.md.
    public func write(to outDir: String) throws {
        try AtomicFile.write(csv.text, to: outDir + "/comparison.csv")
        try AtomicFile.write(markdownLines.joined(separator: "\n") + "\n", to: outDir + "/comparison.md")
    }

    /// The Markdown table, and the baseline's test scores under it.
    public var markdownLines: [String] {
        var table = ["| Method | Rank/Tau | Before FT | Recalibrated | After FT | Chosen | Final | Recovery | Params | FLOPs | Speed-up |",
                     "|---|---|---|---|---|---|---|---|---|---|---|"]
        for (m, r) in rows {
            table.append(String(format: "| %@ | %@ | %.4f | %.4f | %.4f | %@ | %.4f | %.1f%% | -%.1f%% | -%.1f%% | %.2fx |",
                                m.name.uppercased(), m.setting, r.afterFactorisation.dice, r.afterRecalibration.dice, r.afterFineTune.dice,
                                r.chosen ?? "", r.chosenScore.dice,
                                r.diceRecoveryPercent, r.summary.parameterReductionPercent, r.summary.flopReductionPercent, r.latency.speedUp))
        }
        if let first = rows.first { table.append(String(format: "\nbaseline test dice %.4f iou %.4f", first.1.baseline.dice, first.1.baseline.iou)) }
        return table
    }

    /// The same as CSV, with full-precision numbers.
    public var csv: CSVTable {
        var csv = CSVTable(header: ["method", "setting", "folder", "dice_before_ft", "dice_recalibrated", "dice_fine_tuned", "chosen", "dice_final",
                                    "dice_recovery_percent", "parameter_reduction_percent", "flop_reduction_percent", "speed_up", "baseline_dice", "baseline_iou"])
        for (m, r) in rows {
            csv.append([m.name, m.setting, folder(m)] + [
                r.afterFactorisation.dice, r.afterRecalibration.dice, r.afterFineTune.dice].map { "\($0)" } + [r.chosen ?? ""] + [
                r.chosenScore.dice, r.diceRecoveryPercent,
                r.summary.parameterReductionPercent, r.summary.flopReductionPercent, r.latency.speedUp, r.baseline.dice, r.baseline.iou,
            ].map { "\($0)" })
        }
        return csv
    }

    /// A setting that factorised no layer has compressed nothing: say so and why (a rank at or above
    /// every layer's full rank, typically), instead of a silent copy of the baseline.
    public static func warnIfNothingFactorised(_ m: CompressionMethod, _ r: CompressResult) {
        guard r.summary.factorisedLayerCount == 0 else { return }
        let largest = r.summary.layers.map(\.fullRank).max() ?? 0
        if case .svd(let rank) = m, rank >= largest {
            Log.warn("\(m.description): rank \(rank) is at or above every layer's full rank (largest \(largest)): nothing was compressed; give a rank below \(largest)")
        } else {
            Log.warn("\(m.description): no layer was factorised (see layers.csv for each layer's reason): nothing was compressed")
        }
    }
}
