import Basics
import Compression
import Engine
import Foundation
import Imaging
import ModelInterop

/// Everything a baseline training run needs; the sweep's `train` job carries exactly this.
public struct TrainSpec: Codable, Sendable, Equatable {
    public var data: DataSource
    public var imageSize: Int
    public var model: UNetConfig
    public var training: TrainingSettings
    /// Channels of the training images as stored (1 gray, 3 colour), recorded in the model so that
    /// everyone can tell how the data was converted to `model.inputChannels` (gray repeated into
    /// RGB, or RGB to gray by luminance). Nil in models written before it was recorded.
    public var sourceChannels: Int?

    public init(data: DataSource = DataSource(), imageSize: Int = 128, model: UNetConfig = UNetConfig(),
                training: TrainingSettings = TrainingSettings(), sourceChannels: Int? = nil) {
        self.data = data; self.imageSize = imageSize; self.model = model; self.training = training
        self.sourceChannels = sourceChannels
    }

    /// How the images were converted for the model, for logs and reports.
    public var conversion: String {
        guard let s = sourceChannels else { return "images converted to \(model.inputChannels) channel(s)" }
        if s == model.inputChannels { return s == 1 ? "gray images, as stored" : "colour images, as stored" }
        return s == 1 ? "gray images repeated into RGB" : "colour images converted to gray (luminance)"
    }

    public var problem: String? {
        if imageSize < 16 || imageSize % (1 << model.depth) != 0 {
            return "image size \(imageSize) must be at least 16 and a multiple of 2^depth = \(1 << model.depth)"
        }
        return model.problem ?? training.problem
    }
}

/// `metrics.json` of a training run.
public struct TrainResult: Codable, Sendable {
    /// Test set, inference mode (running statistics), after recalibration when on: the headline numbers.
    public var test: EvaluationResult
    /// Test set scored with batch statistics: inference-mode scores should match these.
    public var testWithBatchStatistics: EvaluationResult
    /// Test set before the final recalibration (nil when recalibration is off).
    public var testBeforeRecalibration: EvaluationResult?
    public var parameters: Int
    public var trainableParameters: Int
    public var forwardFLOPsPerImage: Int
    public var epochsRun: Int
    public var bestEpoch: Int
    public var stoppedBy: StopReason
    public var trainingSeconds: Double
    public var totalSeconds: Double
    public var batchNormMomentum: Float
    public var split: String
    public var data: String
    public var imageSize: Int
    public var blasThreads: Int
    public var warnings: [String]
    /// The engine's per-CPU choices for this run (kernel family, threads, Winograd): results are
    /// deterministic for the same choices (nil in metrics written before they were recorded).
    public var engine: EngineChoices? = nil
    /// Which algorithm each convolution ran, per pass, at `imageSize` (nil in metrics written before
    /// they were recorded).
    public var convolutionPlans: [ConvolutionPlanRecord]? = nil
}

public enum TrainJob {
    public static let modelFile = "model.safetensors"
    public static let historyFile = "history.csv"
    public static let metricsFile = "metrics.json"
    /// Model metadata keys that let `compress` and `evaluate` reuse the baseline's data and split.
    public static let specKey = "ranksweep.train_spec"

    /// The input size a model file records: the size ranksweep trained it at, else a Keras model's
    /// square input (nil when it records neither).
    public static func recordedImageSize(_ metadata: [String: String]) -> Int? {
        metadata[specKey].flatMap { try? JSONDecoder().decode(TrainSpec.self, from: Data($0.utf8)).imageSize }
            ?? metadata[ModelFile.imageSizeKey].flatMap(Int.init)
    }

    /// Loads the data (validating every file first), trains, recalibrates, scores on the test split,
    /// and writes `model.safetensors`, `history.csv` and `metrics.json` into `outDir`. With
    /// `checkpoints`, writes the loop's state after every epoch and/or continues from a checkpoint.
    public static func run(_ spec: TrainSpec, outDir: String, checkpoints: Checkpointing = .none,
                           events: @escaping (TrainingEvent) -> Void = { _ in }) throws -> TrainResult {
        if let problem = spec.problem { throw TrainingError(description: problem) }
        let start = monotonicSeconds()
        var spec = spec
        if spec.sourceChannels == nil { spec.sourceChannels = try spec.data.storedChannels() }
        // A bad checkpoint is found before the data loads.
        let resume = try checkpoints.load()
        let data = try spec.data.load(imageSize: spec.imageSize, channels: spec.model.inputChannels)
        for w in data.warnings { events(.note("warning: \(w)")) }
        events(.note("data: \(spec.data.description); \(data.summary); \(spec.conversion)"))
        try OutputFiles.makeDirectory(outDir)
        let model = UNet(config: spec.model, seed: spec.training.seed)
        // history.csv grows after every epoch, so a long run can be followed live (as Keras's CSVLogger).
        var live: [EpochRecord] = resume?.state.history ?? []
        let historyPath = outDir + "/" + historyFile
        let trainer = Trainer(model: model, settings: spec.training, train: data.train, val: data.val) { event in
            if case let .epochFinished(record) = event {
                live.append(record)
                try? OutputFiles.writeHistory(live, to: historyPath)
            }
            events(event)
        }
        trainer.resumeFrom = resume
        trainer.checkpointSink = checkpoints.sink()
        let outcome = try trainer.run()
        let batch = spec.training.batchSize
        var before: EvaluationResult? = nil
        if spec.training.recalibrateBatchNorm {
            before = Evaluation.evaluate(model, on: data.test, batchSize: batch)
            BatchNormRecalibration.run(model: model, samples: data.train, batchSize: batch)
        }
        let test = Evaluation.evaluate(model, on: data.test, batchSize: batch)
        let batchStats = Evaluation.evaluate(model, on: data.test, batchSize: batch, training: true)
        let specJSON = try OutputFiles.metadataJSON(spec)
        try OutputFiles.saveModel(model, to: outDir + "/" + modelFile, metadata: [specKey: specJSON])
        try OutputFiles.writeHistory(outcome.history, to: outDir + "/" + historyFile)
        let result = TrainResult(
            test: test, testWithBatchStatistics: batchStats, testBeforeRecalibration: before,
            parameters: model.parameterCount, trainableParameters: model.trainableParameterCount,
            forwardFLOPsPerImage: model.flopsPerImage(height: spec.imageSize, width: spec.imageSize),
            epochsRun: outcome.history.count, bestEpoch: outcome.bestEpoch, stoppedBy: outcome.stoppedBy,
            trainingSeconds: outcome.seconds, totalSeconds: monotonicSeconds() - start,
            batchNormMomentum: model.batchNorms.first?.momentum ?? 0, split: data.summary,
            data: spec.data.description, imageSize: spec.imageSize, blasThreads: BLAS.threads, warnings: data.warnings,
            engine: .current, convolutionPlans: model.convolutionPlans(height: spec.imageSize, width: spec.imageSize))
        try OutputFiles.writeJSON(result, to: outDir + "/" + metricsFile)
        return result
    }
}
