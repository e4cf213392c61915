import ArgumentParser
import Basics
import CommandLineOptions
import CSupport
import Compression
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
    @Option(name: .customLong("svd-ranks"), help: "Comma-separated SVD ranks.", transform: ListOption<Int>.ints("--svd-ranks"))
    var svdRanks: ListOption<Int>?
    @Option(name: .customLong("arsvd-taus"), help: "Comma-separated ARSVD thresholds.", transform: ListOption<Double>.fractions("--arsvd-taus"))
    var arsvdTaus: ListOption<Double>?
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
        result += (svdRanks?.values ?? []).map { .svd(rank: $0) }
        result += (arsvdTaus?.values ?? []).map { .arsvd(tau: $0) }
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
            for m in all { try checkOutDir(CompressComparison.outputFolder(of: m, among: all, in: outDir), overwrite: overwrite) }
        }
        var spec = CompressSpec(method: all[0])
        spec.latencyProfile = latencyProfile.map { UserPath.absolute($0) }
        (spec.fineTune.distill, spec.fineTune.epochs, spec.fineTune.learningRate) = (finetuneDistill, finetuneEpochs, finetuneLr)
        if let dataRoot { spec.data = DataSource(root: UserPath.absolute(dataRoot)); spec.data?.datasetOptions = layout.options }
        let comparison = try CompressComparison.run(all, spec, baselinePath: model, outDir: outDir, progress: progress)
        if !comparison.rows.isEmpty {
            try SweepCLI.guarded { try comparison.write(to: outDir) }
            progress.line("wrote \(outDir)/comparison.csv and comparison.md")
        }
        try exitIfInterrupted()
    }
}
