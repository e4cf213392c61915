import ArgumentParser
import CSupport
import Engine
import Foundation
import Pipeline

/// `ranksweep train`: the baseline model every sweep compresses.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a U-Net baseline; writes model.safetensors, history.csv and metrics.json.")

    @OptionGroup var data: DataOptions
    @OptionGroup var threads: ThreadOptions
    @Option(name: [.customLong("image-size"), .customLong("image_size")], help: "Model input size (square).") var imageSize = 128
    @Option(name: [.customLong("base-filters"), .customLong("base_filters")], help: "Filters of the first level (64 = the paper's size).") var baseFilters = 16
    @Option(help: "Pooling levels.") var depth = 4
    @Option(help: "Input channels (1 = gray, 3 = RGB).") var channels = 3
    @Option(help: "Maximum epochs.") var epochs = 100
    @Option(name: [.customLong("batch-size"), .customLong("batch_size")], help: "Batch size.") var batchSize = 16
    @Option(help: "Learning rate (Adam).") var lr: Float = 1e-4
    @Option(help: "Early-stopping patience (epochs without a better validation loss).") var patience = 15
    @Option(name: [.customLong("lr-patience"), .customLong("lr_patience")], help: "Epochs on a plateau before the learning rate drops 10x.") var lrPatience = 4
    @Flag(name: [.customLong("no-augment"), .customLong("no_augment")], help: "Turn augmentation off.") var noAugment = false
    @Flag(help: .hidden) var augment = false   // the seed's `--augment`: augmentation is on by default anyway
    @Option(help: "Seed of initialisation, shuffling and augmentation.") var seed: UInt64 = 42
    @Option(name: [.customLong("bn-momentum"), .customLong("bn_momentum")], help: "BatchNorm momentum (default: adapted to steps per epoch).") var bnMomentum: Float?
    @Flag(name: [.customLong("no-bn-recalibrate"), .customLong("no_bn_recalibrate")], help: "Skip the final BatchNorm recalibration.") var noBNRecalibrate = false
    @Flag(name: [.customLong("keras-bn"), .customLong("keras_bn")],
          help: "Reproduce Keras's BatchNorm handling for comparison: momentum 0.99 unless --bn-momentum, no recalibration at all.")
    var kerasBN = false
    @Option(name: [.customLong("out-dir"), .customLong("out_dir")], help: "Output folder.") var outDir: String

    var spec: TrainSpec {
        var t = TrainingSettings()
        t.epochs = epochs; t.batchSize = batchSize; t.learningRate = lr; t.patience = patience; t.lrPatience = lrPatience
        t.augment = !noAugment; t.seed = seed; t.bnMomentum = bnMomentum; t.recalibrateBatchNorm = !noBNRecalibrate
        if kerasBN { t.bnMomentum = bnMomentum ?? 0.99; t.recalibrateBatchNorm = false; t.exactValidation = false }
        return TrainSpec(data: data.source, imageSize: imageSize,
                         model: UNetConfig(inputChannels: channels, baseFilters: baseFilters, depth: depth), training: t)
    }

    func validate() throws {
        if let problem = spec.problem { throw ValidationError(problem) }
    }

    func run() throws {
        threads.apply()
        csupport_install_stop_handlers()
        let progress = TerminalProgress()
        let result = try TrainJob.run(spec, outDir: outDir, events: trainingEventPrinter(progress))
        progress.line(String(format: "test (%d images): dice %.4f iou %.4f loss %.4f (batch statistics: dice %.4f); %d epochs (%@, best %d) in %.1f s",
                             result.test.images, result.test.dice, result.test.iou, result.test.loss,
                             result.testWithBatchStatistics.dice, result.epochsRun, result.stoppedBy, result.bestEpoch, result.totalSeconds))
        if let before = result.testBeforeRecalibration {
            progress.line(String(format: "BatchNorm recalibration: test dice %.4f -> %.4f", before.dice, result.test.dice))
        }
        progress.line("wrote \(outDir)/\(TrainJob.modelFile), \(TrainJob.historyFile), \(TrainJob.metricsFile)")
    }
}
