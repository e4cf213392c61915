import ArgumentParser
import Basics
import CSupport
import Compression
import Engine
import Foundation
import Pipeline

/// `ranksweep compress`: factorise a baseline, evaluate, fine-tune, evaluate again.
struct Compress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compress a baseline by SVD, ARSVD, Tucker-2 or spatial SVD, then fine-tune.",
        discussion: """
        One setting: --method svd --rank 50, --method arsvd --tau 0.9, --method tucker2 --rank 16|0.25|auto|--tau 0.9, \
        --method spatial-svd --rank 8 (ranks: an integer, a fraction of the channels, or auto = VBMF). Several in turn (the seed's \
        spelling): --svd-ranks "50,100,150" --arsvd-taus "0.95,0.9,0.85", each into its own subfolder. \
        Writes model.safetensors, layers.csv, finetune_history.csv and result.json per setting.
        """)

    @Option(name: [.customLong("model"), .customLong("model-path")],
            help: "Baseline model written by `ranksweep train`, or a Keras U-Net (.keras, .h5, .weights.h5; give --data-root) (--model-path: the seed's name).") var model: String
    @Option(help: "svd, arsvd, tucker2 or spatial-svd.") var method: String?
    // .unconditional: `--rank -3` is a bad rank (said by validate), not a missing value.
    @Option(parsing: .unconditional, help: "Rank: an integer (svd, tucker2, spatial-svd), a fraction in (0, 1) of the channels or auto (VBMF) (tucker2, spatial-svd).") var rank: String?
    @Option(parsing: .unconditional, help: "Energy threshold in (0, 1] (arsvd, tucker2, spatial-svd).") var tau: Double?
    @Option(name: .customLong("svd-ranks"), help: "Comma-separated SVD ranks.") var svdRanks: String?
    @Option(name: .customLong("arsvd-taus"), help: "Comma-separated ARSVD thresholds.") var arsvdTaus: String?
    @Option(name: .customLong("data-root"), help: "Data folder (default: the baseline's own data and split).") var dataRoot: String?
    @Option(name: [.customLong("fine-tune-epochs"), .customLong("finetune-epochs")], help: "Fine-tuning epochs (0 = none; the sweep file's fine_tune.epochs).") var finetuneEpochs = FineTuneSettings().epochs
    @Option(name: [.customLong("fine-tune-lr"), .customLong("finetune-lr")], help: "Fine-tuning learning rate (fine_tune.lr).") var finetuneLr: Float = FineTuneSettings().learningRate
    @Option(name: .customLong("out-dir"), help: "Output folder.") var outDir: String
    @Flag(help: "Replace the models an earlier run left in --out-dir (otherwise refused).") var overwrite = false
    @Option(name: .customLong("latency-profile"), help: "A `ranksweep profile-layers` file of the deployment target: pairs it times no faster than their full layer stay full (default: every eligible layer is factorised).")
    var latencyProfile: String?
    @Option(name: [.customLong("fine-tune-distill"), .customLong("finetune-distill")], help: "Weight in [0, 1) of the baseline's probabilities as soft targets while fine-tuning (fine_tune.distill; 0: the masks alone).")
    var finetuneDistill: Double = FineTuneSettings().distill
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var layout: DatasetLayoutOptions
    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var logging: LoggingOptions

    func methods() throws -> [CompressionMethod] {
        var result: [CompressionMethod] = []
        if let method { result.append(try CompressionMethod(name: method, rankText: rank, tau: tau)) }
        if let svdRanks {
            for part in svdRanks.split(separator: ",") {
                guard let r = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--svd-ranks: '\(part)' is not an integer")
                }
                result.append(.svd(rank: r))
            }
        }
        if let arsvdTaus {
            for part in arsvdTaus.split(separator: ",") {
                guard let t = Double(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--arsvd-taus: '\(part)' is not a number")
                }
                result.append(.arsvd(tau: t))
            }
        }
        for m in result { try m.validate() }
        return result
    }

    func validate() throws {
        if method == nil && (rank != nil || tau != nil) { throw ValidationError("--rank and --tau need --method") }
        do {
            if try methods().isEmpty { throw ValidationError("give --method svd --rank R, --method arsvd --tau T, --method tucker2|spatial-svd --rank R|--tau T, --svd-ranks or --arsvd-taus") }
        } catch let error as CompressionError { throw ValidationError(error.message) }
        guard finetuneEpochs >= 0 else { throw ValidationError("--finetune-epochs cannot be negative") }
        guard finetuneLr > 0 else { throw ValidationError("--finetune-lr must be positive") }
        guard finetuneDistill >= 0 && finetuneDistill < 1 else { throw ValidationError("--finetune-distill must be in [0, 1), got \(finetuneDistill)") }
    }

    func run() throws {
        logging.apply()
        threads.apply()
        csupport_install_stop_handlers()
        let progress = progressOptions.display()
        let model = UserPath.absolute(model), outDir = UserPath.absolute(outDir)
        let all = try methods()
        try SweepCLI.guarded {
            guard FileManager.default.fileExists(atPath: model) else { throw ValidationError("--model \(model): no such file") }
            for m in all { try checkOutDir(all.count == 1 ? outDir : outDir + "/" + folderName(m), overwrite: overwrite) }
        }
        var rows: [(CompressionMethod, CompressResult)] = []
        for m in all {
            var spec = CompressSpec(method: m)
            spec.latencyProfile = latencyProfile.map { UserPath.absolute($0) }
            spec.fineTune.distill = finetuneDistill
            spec.fineTune.epochs = finetuneEpochs
            spec.fineTune.learningRate = finetuneLr
            if let dataRoot { spec.data = DataSource(root: UserPath.absolute(dataRoot)); spec.data?.datasetOptions = layout.options }
            let dir = all.count == 1 ? outDir : outDir + "/" + folderName(m)
            if Log.level <= .info { progress.line("== \(m.description) -> \(dir)") }
            let r = try CompressJob.run(spec, baselinePath: model, outDir: dir, events: trainingEventPrinter(progress, label: "fine-tune"))
            warnIfNothingFactorised(m, r)
            rows.append((m, r))
            if csupport_stop_requested() != 0 { break }
        }
        var table = ["| Method | Rank/Tau | Before FT | Recalibrated | After FT | Chosen | Final | Recovery | Params | FLOPs | Speed-up |",
                     "|---|---|---|---|---|---|---|---|---|---|---|"]
        var csv = CSVTable(header: ["method", "setting", "folder", "dice_before_ft", "dice_recalibrated", "dice_fine_tuned", "chosen", "dice_final",
                                    "dice_recovery_percent", "parameter_reduction_percent", "flop_reduction_percent", "speed_up", "baseline_dice", "baseline_iou"])
        for (m, r) in rows {
            let setting = m.setting
            table.append(String(format: "| %@ | %@ | %.4f | %.4f | %.4f | %@ | %.4f | %.1f%% | -%.1f%% | -%.1f%% | %.2fx |",
                                m.name.uppercased(), setting, r.afterFactorisation.dice, r.afterRecalibration.dice, r.afterFineTune.dice,
                                r.chosen ?? "", r.chosenScore.dice,
                                r.diceRecoveryPercent, r.summary.parameterReductionPercent, r.summary.flopReductionPercent, r.latency.speedUp))
            csv.append([m.name, setting, all.count == 1 ? "." : folderName(m)] + [
                r.afterFactorisation.dice, r.afterRecalibration.dice, r.afterFineTune.dice].map { "\($0)" } + [r.chosen ?? ""] + [
                r.chosenScore.dice, r.diceRecoveryPercent,
                r.summary.parameterReductionPercent, r.summary.flopReductionPercent, r.latency.speedUp, r.baseline.dice, r.baseline.iou,
            ].map { "\($0)" })
        }
        if let first = rows.first { table.append(String(format: "\nbaseline test dice %.4f iou %.4f", first.1.baseline.dice, first.1.baseline.iou)) }
        progress.line("")
        for line in table { progress.line(line) }
        if !rows.isEmpty {
            // The table is a result: kept beside the settings' folders, not only printed.
            try SweepCLI.guarded {
                try AtomicFile.write(csv.text, to: outDir + "/comparison.csv")
                try AtomicFile.write(table.joined(separator: "\n") + "\n", to: outDir + "/comparison.md")
            }
            progress.line("wrote \(outDir)/comparison.csv and comparison.md")
        }
        try exitIfInterrupted()
    }
}

/// A setting that factorised no layer has compressed nothing: say so and why (a rank at or above
/// every layer's full rank, typically), instead of a silent copy of the baseline.
func warnIfNothingFactorised(_ m: CompressionMethod, _ r: CompressResult) {
    guard r.summary.factorisedLayerCount == 0 else { return }
    let largest = r.summary.layers.map(\.fullRank).max() ?? 0
    if case .svd(let rank) = m, rank >= largest {
        Log.warn("\(m.description): rank \(rank) is at or above every layer's full rank (largest \(largest)): nothing was compressed; give a rank below \(largest)")
    } else {
        Log.warn("\(m.description): no layer was factorised (see layers.csv for each layer's reason): nothing was compressed")
    }
}

/// Subfolder of one setting in a multi-setting run: `svd_r50`, `arsvd_tau0.9`, `tucker2_rauto`.
func folderName(_ m: CompressionMethod) -> String { m.slug }
