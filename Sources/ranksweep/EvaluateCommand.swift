import ArgumentParser
import Basics
import CommandLineOptions
import Foundation
import ModelInterop
import Pipeline

/// `ranksweep evaluate`: Dice and IoU of a saved model on a split, optionally with overlays.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Score a model on a data split; optionally write PNG overlays.")

    @Option(name: [.customLong("model"), .customLong("model-path")], help: "Model file (baseline or compressed; or a Keras .keras/.h5/.weights.h5).") var model: String
    @Option(name: .customLong("data-root"), help: "Data folder (default: the model's own data and split).") var dataRoot: String?
    @Option(help: "train, val or test.") var split = "test"
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize = 8
    @Option(help: "Write image | truth | prediction overlays (PNG) into this folder.") var overlays: String?
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var layout: DatasetLayoutOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard ["train", "val", "test"].contains(split) else { throw ValidationError("--split must be train, val or test, got '\(split)'") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        logging.apply()
        threads.apply()
        let model = UserPath.absolute(model)
        let (net, metadata) = try ModelFile.load(path: model)
        let trainSpec = metadata[TrainJob.specKey].flatMap { try? JSONDecoder().decode(TrainSpec.self, from: Data($0.utf8)) }
        guard let imageSize = trainSpec?.imageSize ?? (dataRoot != nil ? TrainJob.recordedImageSize(metadata) ?? 128 : nil) else {
            throw ValidationError("\(model): no training settings in its metadata; give --data-root")
        }
        let source = dataRoot.map {
            var given = DataSource(root: UserPath.absolute($0), splitSeed: trainSpec?.data.splitSeed ?? 42)
            given.datasetOptions = layout.options
            return given
        } ?? trainSpec!.data
        let data = try source.load(imageSize: imageSize, channels: net.config.inputChannels)
        let samples = split == "train" ? data.train : split == "val" ? data.val : data.test
        let r = Evaluation.evaluate(net, on: samples, batchSize: batchSize)
        print(String(format: "%@ split (%d images): dice %.4f iou %.4f (pooled: dice %.4f iou %.4f) loss %.4f",
                     split, r.images, r.dice, r.iou, r.dicePooled, r.iouPooled, r.loss))
        if let overlays {
            try Evaluation.writeOverlays(net, samples, batchSize: batchSize, to: overlays)
            print("wrote \(samples.count) overlays to \(overlays)")
        }
    }
}
