import Basics
import Compression
import Engine
import Foundation
import Imaging
import ModelInterop

/// One compression job: a baseline, a method and its rank or tau, fine-tune settings.
public struct CompressSpec: Codable, Sendable, Equatable {
    public var method: CompressionMethod
    public var fineTune: FineTuneSettings
    /// Data to score and fine-tune on; nil = the baseline's own data and split (from its metadata).
    public var data: DataSource?
    /// Batch size of evaluation, BatchNorm recalibration and fine-tuning; nil = the baseline's
    /// training batch size (from its metadata).
    public var batchSize: Int?
    /// Latency: batch and timed runs (median reported), same threads for baseline and compressed.
    public var latencyBatch: Int = 8
    public var latencyRuns: Int = 7
    /// Time each factorised pair against the full layer it replaces and keep the full one when the
    /// pair is not faster (`LayerTiming`). Off: every eligible layer is factorised, so the result
    /// depends only on the model and the method, not on the machine or its load.
    public var layerTiming: Bool = true

    public init(method: CompressionMethod, fineTune: FineTuneSettings = FineTuneSettings(), data: DataSource? = nil, batchSize: Int? = nil) {
        self.method = method; self.fineTune = fineTune; self.data = data; self.batchSize = batchSize
    }
}

/// `result.json` of a compression job. Recovery % = score after fine-tuning / baseline score x 100.
public struct CompressResult: Codable, Sendable {
    public var method: CompressionMethod
    public var summary: CompressionSummary
    public var baseline: EvaluationResult
    public var afterFactorisation: EvaluationResult
    public var afterRecalibration: EvaluationResult
    public var afterFineTune: EvaluationResult
    public var diceRecoveryPercent: Double
    public var iouRecoveryPercent: Double
    public var latency: LatencyComparison
    public var fineTuneEpochs: Int
    public var fineTuneSeconds: Double
    public var fineTuneHistory: [EpochRecord]
    public var totalSeconds: Double
    public var split: String
}

public enum CompressJob {
    public static let modelFile = "model.safetensors"
    public static let layersFile = "layers.csv"
    public static let resultFile = "result.json"
    public static let historyFile = "finetune_history.csv"

    /// Compress the baseline at `baselinePath`, evaluate right after factorisation, after BatchNorm
    /// recalibration, and after fine-tuning, all on the baseline's test split; write the compressed
    /// model, the per-layer table and `result.json` into `outDir`.
    /// `checkpoints`: the fine-tune's checkpoints (written after every epoch, and/or continued from).
    public static func run(_ spec: CompressSpec, baselinePath: String, outDir: String, checkpoints: Checkpointing = .none,
                           events: @escaping (TrainingEvent) -> Void = { _ in }) throws -> CompressResult {
        let start = monotonicSeconds()
        try spec.method.validate()
        var resume = try checkpoints.load()
        let (baseline, metadata, trainSpec) = try loadBaseline(path: baselinePath, data: spec.data)
        let source = spec.data ?? trainSpec.data
        let data = try source.load(imageSize: trainSpec.imageSize, channels: baseline.config.inputChannels)
        events(.note("data: \(source.description); \(data.summary)"))
        try OutputFiles.makeDirectory(outDir)
        let batch = spec.batchSize ?? trainSpec.training.batchSize
        let baselineScore = Evaluation.evaluate(baseline, on: data.test, batchSize: batch)

        // Each pair is timed against its full layer; one that is not faster stays full (LayerTiming).
        let (model, summary) = try ModelCompressor.compress(model: baseline, method: spec.method, imageSize: trainSpec.imageSize,
                                                            layerTiming: spec.layerTiming ? LayerTiming(batch: spec.latencyBatch) : nil)
        events(.note(String(format: "%@: %d layers factorised, parameters -%.1f%%, FLOPs -%.1f%%", spec.method.description,
                            summary.factorisedLayerCount, summary.parameterReductionPercent, summary.flopReductionPercent)))
        // A fine-tune checkpoint fits only the layers its run factorised. With layer timing a new
        // attempt can decide differently (another machine, another load): then fine-tune anew.
        if let r = resume, r.weights.mapValues(\.shape) != Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.value.shape) }) {
            events(.note("the fine-tune checkpoint (epoch \(r.state.epoch)) holds other layers than this attempt factorised (layer timing decided differently); fine-tuning from the start"))
            resume = nil
        }
        let afterFactorisation = Evaluation.evaluate(model, on: data.test, batchSize: batch)
        BatchNormCalibration.recalibrate(model, on: data.train, batchSize: batch)
        let afterRecalibration = Evaluation.evaluate(model, on: data.test, batchSize: batch)

        var settings = trainSpec.training
        settings.batchSize = batch
        settings.epochs = spec.fineTune.epochs
        settings.learningRate = spec.fineTune.learningRate
        settings.patience = spec.fineTune.patience
        settings.lrPatience = spec.fineTune.epochs + 1   // no LR schedule while fine-tuning
        settings.bnMomentum = model.batchNorms.first?.momentum
        var outcome: TrainingOutcome? = nil
        if spec.fineTune.epochs > 0 {
            let trainer = Trainer(model: model, settings: settings, train: data.train, val: data.val, events: events)
            trainer.resumeFrom = resume
            trainer.checkpointSink = checkpoints.sink()
            outcome = try trainer.run()
            if trainSpec.training.recalibrateBatchNorm { BatchNormCalibration.recalibrate(model, on: data.train, batchSize: batch) }
        }
        let afterFineTune = Evaluation.evaluate(model, on: data.test, batchSize: batch)
        let latency = try Latency.compareInferenceLatency(baseline: baseline, compressed: model, batch: spec.latencyBatch,
                                                          imageSize: trainSpec.imageSize, runs: spec.latencyRuns, warmup: 1)
        var extra = metadata
        // A Keras baseline had no training settings: the compressed model records the ones used here.
        if extra[TrainJob.specKey] == nil { extra[TrainJob.specKey] = try OutputFiles.metadataJSON(trainSpec) }
        extra["ranksweep.compression"] = try OutputFiles.metadataJSON(spec.method)
        try OutputFiles.saveModel(model, to: outDir + "/" + modelFile, metadata: extra)
        try layersCSV(summary).write(to: outDir + "/" + layersFile)
        try OutputFiles.writeHistory(outcome?.history ?? [], to: outDir + "/" + historyFile)
        func recovery(_ after: Double, _ base: Double) -> Double { base > 0 ? 100 * after / base : 0 }
        let result = CompressResult(
            method: spec.method, summary: summary, baseline: baselineScore, afterFactorisation: afterFactorisation,
            afterRecalibration: afterRecalibration, afterFineTune: afterFineTune,
            diceRecoveryPercent: recovery(afterFineTune.dice, baselineScore.dice),
            iouRecoveryPercent: recovery(afterFineTune.iou, baselineScore.iou), latency: latency,
            fineTuneEpochs: outcome?.history.count ?? 0, fineTuneSeconds: outcome?.seconds ?? 0,
            fineTuneHistory: outcome?.history ?? [], totalSeconds: monotonicSeconds() - start, split: data.summary)
        try OutputFiles.writeJSON(result, to: outDir + "/" + resultFile)
        return result
    }

    /// Loads a baseline with the training settings it records (data, split, image size), and checks
    /// that images can be fed to it: everything `run` needs before any work starts. A model ranksweep
    /// did not train (a Keras file) records none: it takes `data` and the input size in its Keras
    /// config (128 when unknown), with the default training settings.
    public static func loadBaseline(path: String, data: DataSource? = nil) throws -> (model: UNet, metadata: [String: String], training: TrainSpec) {
        let (baseline, metadata) = try ModelFile.load(path: path)
        if let json = metadata[TrainJob.specKey], let trainSpec = try? JSONDecoder().decode(TrainSpec.self, from: Data(json.utf8)) {
            return (baseline, metadata, trainSpec)
        }
        guard metadata[ModelFile.sourceKey] != nil, let data else {
            throw ModelFileError(path: path, reason: metadata[ModelFile.sourceKey] == nil
                ? "not a baseline written by `ranksweep train` (no training settings in its metadata)"
                : "a model ranksweep did not train has no data of its own: give the data (--data-root)")
        }
        let size = metadata[ModelFile.imageSizeKey].flatMap(Int.init) ?? 128
        return (baseline, metadata, TrainSpec(data: data, imageSize: size, model: baseline.config))
    }

    /// One row per convolution: what was decided and what it cost or saved.
    static func layersCSV(_ summary: CompressionSummary) -> CSVTable {
        var table = CSVTable(header: ["layer", "kernel_shape", "full_rank", "break_even_rank", "rank", "energy_kept", "params_before",
                                      "params_after", "flops_before", "flops_after", "factorised", "skip_reason"])
        for d in summary.layers {
            table.append([d.name, d.kernelShape.map(String.init).joined(separator: "x"), String(d.fullRank),
                          String(format: "%.2f", d.breakEvenRank), d.rank.map(String.init) ?? "", String(format: "%.6f", d.energyKept),
                          String(d.parametersBefore), String(d.parametersAfter), String(d.flopsBefore), String(d.flopsAfter),
                          d.factorised ? "yes" : "no", d.skipReasonText])
        }
        return table
    }
}
