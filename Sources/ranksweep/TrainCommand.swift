import ArgumentParser
import Basics
import CommandLineOptions
import CSupport
import Engine
import Pipeline

/// `ranksweep train`: the baseline model every sweep compresses.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a U-Net baseline; writes model.safetensors, history.csv and metrics.json (and a checkpoint after every epoch).")

    @OptionGroup var data: DataOptions
    @OptionGroup var threads: ThreadOptions
    @Option(name: .customLong("image-size"), help: "Model input size (square).") var imageSize = 128
    @Option(name: .customLong("base-filters"), help: "Filters of the first level (64 = the paper's size).") var baseFilters = 16
    @Option(help: "Pooling levels.") var depth = 4
    @Option(help: "Input channels: 1 = gray, 3 = RGB (default: the data's own kind, gray when every image is gray).") var channels: Int?
    // Defaults: TrainingSettings's (Basics), the one home of each.
    @Option(help: "Maximum epochs.") var epochs = TrainingSettings().epochs
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize = TrainingSettings().batchSize
    @Option(help: "Learning rate (Adam).") var lr: Float = TrainingSettings().learningRate
    @Option(help: "Early-stopping patience (epochs without a better validation loss).") var patience = TrainingSettings().patience
    @Option(name: .customLong("lr-patience"), help: "Epochs on a plateau before the learning rate drops 10x.") var lrPatience = TrainingSettings().lrPatience
    @Flag(name: .customLong("no-augment"), help: "Turn augmentation off.") var noAugment = false
    @Flag(help: .hidden) var augment = false   // the seed's `--augment`: augmentation is on by default anyway
    @Option(help: "Seed of initialisation, shuffling and augmentation.") var seed: UInt64 = 42
    @Option(name: .customLong("bn-momentum"), help: "BatchNorm momentum (default: adapted to steps per epoch).") var bnMomentum: Float?
    @Flag(name: .customLong("no-bn-recalibrate"), help: "Skip the final BatchNorm recalibration.") var noBNRecalibrate = false
    @Flag(name: .customLong("keras-bn"),
          help: "Reproduce Keras's BatchNorm handling for comparison: momentum 0.99 unless --bn-momentum, no recalibration at all.")
    var kerasBN = false
    @Option(name: .customLong("out-dir"), help: "Output folder.") var outDir: String
    @Flag(help: "Replace the model an earlier run left in --out-dir (otherwise refused).") var overwrite = false
    @Flag(help: "Continue from OUT-DIR/checkpoint (written after every epoch) when there is one, else start afresh: for a preempted or requeued job. The settings must be the same.")
    var resume = false
    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var logging: LoggingOptions

    /// The settings as given; `channels` (when not given) is settled from the data in `run`.
    func spec(channels: Int) -> TrainSpec {
        var t = TrainingSettings()
        t.epochs = epochs; t.batchSize = batchSize; t.learningRate = lr; t.patience = patience; t.lrPatience = lrPatience
        t.augment = !noAugment; t.seed = seed; t.bnMomentum = bnMomentum; t.recalibrateBatchNorm = !noBNRecalibrate
        if kerasBN { t.bnMomentum = bnMomentum ?? 0.99; t.recalibrateBatchNorm = false; t.exactValidation = false }
        return TrainSpec(data: data.source, imageSize: imageSize,
                         model: UNetConfig(inputChannels: channels, baseFilters: baseFilters, depth: depth), training: t)
    }

    func validate() throws {
        if let problem = spec(channels: channels ?? 3).problem { throw ValidationError(problem) }
    }

    func run() throws {
        logging.apply()
        threads.apply()
        csupport_install_stop_handlers()
        let progress = progressOptions.display()
        // --resume continues the run in --out-dir, so its files are meant to be replaced.
        try checkOutDir(UserPath.absolute(self.outDir), overwrite: overwrite || resume)
        let source = data.source
        let settings = spec(channels: try channels ?? source.storedChannels())
        let outDir = UserPath.absolute(outDir)
        let result = try TrainJob.run(settings, outDir: outDir, checkpoints: .inFolder(outDir, resume: resume), events: trainingEventPrinter(progress))
        for line in result.summaryLines(outDir: outDir) { progress.line(line) }
        try exitIfInterrupted()
    }
}
