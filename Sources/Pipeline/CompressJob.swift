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
    /// Measured as an outcome on the host that runs the job; it decides nothing.
    public var latencyBatch: Int = 8
    public var latencyRuns: Int = 7
    /// A `LatencyProfile` file (`ranksweep profile-layers`): pairs it times no faster than their full
    /// layer stay full. nil: every eligible layer is factorised, so the model depends only on the
    /// baseline and the method.
    public var latencyProfile: String?

    public init(method: CompressionMethod, fineTune: FineTuneSettings = FineTuneSettings(), data: DataSource? = nil, batchSize: Int? = nil) {
        self.method = method; self.fineTune = fineTune; self.data = data; self.batchSize = batchSize
    }
}

/// One model a compression job made and scored: the job hands back the one with the best
/// validation Dice (ties: the earliest), never a worse one than it had.
public struct CompressCandidate: Codable, Sendable, Equatable {
    /// `factorised`, `recalibrated`, `fine-tune epoch N`, `fine-tuned, recalibrated`.
    public var name: String
    /// The scores it was chosen by (the validation split; the training split when there is none).
    public var selection: EvaluationResult?
    public var valDice: Double
    /// Test-split Dice and IoU, for reporting only.
    public var testDice: Double?
    public var testIoU: Double?
}

/// `result.json` of a compression job. Recovery % = the chosen model's test score / baseline score x 100.
public struct CompressResult: Codable, Sendable {
    public var method: CompressionMethod
    public var summary: CompressionSummary
    public var baseline: EvaluationResult
    /// Test-split scores right after factorisation, after BatchNorm recalibration (whether kept or
    /// not), and after fine-tuning (the best fine-tuning epoch on validation Dice, epoch 0 being the
    /// model it started from).
    public var afterFactorisation: EvaluationResult
    public var afterRecalibration: EvaluationResult
    public var afterFineTune: EvaluationResult
    /// Every candidate with its validation and test Dice, in the order they were made; `chosen`
    /// names the one saved, and `final` is its test score (nil in results written before the chooser).
    public var candidates: [CompressCandidate]?
    public var chosen: String?
    public var final: EvaluationResult?
    public var selectionSplit: String?
    public var diceRecoveryPercent: Double
    public var iouRecoveryPercent: Double
    public var latency: LatencyComparison
    /// The host the latency was measured on (an outcome of that machine, not of the model alone).
    public var latencyHost: String?
    public var fineTuneEpochs: Int
    public var fineTuneSeconds: Double
    public var fineTuneHistory: [EpochRecord]
    public var totalSeconds: Double
    public var split: String

    /// The saved model's test scores: `final`, or `afterFineTune` in results from before the chooser.
    public var chosenScore: EvaluationResult { final ?? afterFineTune }
}

public enum CompressJob {
    public static let modelFile = "model.safetensors"
    public static let layersFile = "layers.csv"
    public static let resultFile = "result.json"
    public static let historyFile = "finetune_history.csv"
    public static let candidatesFile = "candidates.csv"

    /// Compress the baseline at `baselinePath` and hand back the best model the job made, chosen on
    /// the validation split: right after factorisation; after BatchNorm recalibration (kept only when
    /// it helps); each fine-tuning epoch, early stopping counting the start as epoch 0; and a final
    /// recalibration (kept only when it helps). Every candidate is also scored on the test split for
    /// the report. Writes the chosen model, the per-layer table, the candidates and `result.json`
    /// into `outDir`. `checkpoints`: the fine-tune's checkpoints (written after every epoch, and/or
    /// continued from).
    public static func run(_ spec: CompressSpec, baselinePath: String, outDir: String, checkpoints: Checkpointing = .none,
                           events: @escaping (TrainingEvent) -> Void = { _ in }) throws -> CompressResult {
        let start = monotonicSeconds()
        try spec.method.validate()
        if let problem = spec.fineTune.problem { throw CompressionError(problem) }
        let profile = try spec.latencyProfile.map { path throws(CompressionError) in try LatencyProfile.read(path: path) }
        var resume = try checkpoints.load()
        let (baseline, metadata, trainSpec) = try loadBaseline(path: baselinePath, data: spec.data)
        let source = spec.data ?? trainSpec.data
        let data = try source.load(imageSize: trainSpec.imageSize, channels: baseline.config.inputChannels)
        events(.note("data: \(source.description); \(data.summary)"))
        try OutputFiles.makeDirectory(outDir)
        let batch = spec.batchSize ?? trainSpec.training.batchSize
        let baselineScore = Evaluation.evaluate(baseline, on: data.test, batchSize: batch)
        // Candidates are chosen on validation; a split without one chooses on the training images.
        let (selectionSet, selectionSplit) = data.val.isEmpty ? (data.train, "train") : (data.val, "validation")

        let (model, summary) = try ModelCompressor.compress(model: baseline, method: spec.method, imageSize: trainSpec.imageSize,
                                                            latencyProfile: profile)
        events(.note(String(format: "%@: %d layers factorised, parameters -%.1f%%, FLOPs -%.1f%%", spec.method.description,
                            summary.factorisedLayerCount, summary.parameterReductionPercent, summary.flopReductionPercent)))
        // A fine-tune checkpoint fits only the layers its run factorised: one from another
        // factorisation (another ranksweep version, another profile) is dropped, not failed on.
        if let r = resume, r.weights.mapValues(\.shape) != Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.value.shape) }) {
            events(.note("the fine-tune checkpoint (epoch \(r.state.epoch)) holds other layers than this attempt factorised; fine-tuning from the start"))
            resume = nil
        }
        var candidates: [CompressCandidate] = []
        func score(_ name: String) -> (selection: EvaluationResult, test: EvaluationResult) {
            let s = Evaluation.evaluate(model, on: selectionSet, batchSize: batch), t = Evaluation.evaluate(model, on: data.test, batchSize: batch)
            candidates.append(CompressCandidate(name: name, selection: s, valDice: s.dice, testDice: t.dice, testIoU: t.iou))
            return (s, t)
        }
        let factorised = score("factorised")
        let factorisedStatistics = model.batchNorms.map { ($0.movingMean.value, $0.movingVariance.value) }
        BatchNormRecalibration.run(model: model, samples: data.train, batchSize: batch)
        let recalibrated = score("recalibrated")
        var current = (name: "recalibrated", scores: recalibrated)
        if !(recalibrated.selection.dice > factorised.selection.dice) {
            restore(factorisedStatistics, into: model)
            current = ("factorised", factorised)
        }
        events(.note("start of fine-tuning: \(current.name) (\(selectionSplit) Dice \(format(current.scores.selection.dice)))"))

        var settings = trainSpec.training
        settings.batchSize = batch
        settings.epochs = max(1, spec.fineTune.epochs)
        settings.learningRate = spec.fineTune.learningRate
        settings.patience = spec.fineTune.patience
        settings.lrPatience = settings.epochs + 1   // no LR schedule while fine-tuning
        settings.bnMomentum = model.batchNorms.first?.momentum
        var outcome: TrainingOutcome? = nil
        var afterFineTune = current.scores.test
        if spec.fineTune.epochs > 0 {
            let trainer = Trainer(model: model, settings: settings, train: data.train, val: selectionSet, events: events)
            trainer.monitor = .validationDice
            trainer.startingScore = current.scores.selection
            trainer.reportingScore = { Evaluation.evaluate($0, on: data.test, batchSize: batch) }
            if spec.fineTune.distill > 0 { trainer.teacher = (baseline, Float(spec.fineTune.distill)) }
            trainer.resumeFrom = resume
            trainer.checkpointSink = checkpoints.sink()
            let run = try trainer.run()
            outcome = run
            for r in run.history {
                candidates.append(CompressCandidate(name: "fine-tune epoch \(r.epoch)", selection: nil, valDice: r.valDice,
                                                    testDice: r.testDice, testIoU: r.testIoU))
            }
            if run.bestEpoch > 0, let best = run.history.first(where: { $0.epoch == run.bestEpoch }) {
                current.name = "fine-tune epoch \(run.bestEpoch)"
                current.scores = (Evaluation.evaluate(model, on: selectionSet, batchSize: batch), Evaluation.evaluate(model, on: data.test, batchSize: batch))
                // The restored weights are the epoch's, so its scores come back exactly; if they ever did
                // not, the saved model's own score (just measured) is what the job reports, and it says so.
                if current.scores.test.dice != best.testDice {
                    events(.note("the restored epoch \(run.bestEpoch) scores test Dice \(format(current.scores.test.dice)), not \(format(best.testDice ?? .nan)) as it did: reporting the restored model's"))
                }
            }
            afterFineTune = current.scores.test
            // Training leaves moving statistics behind the weights: recalibrating may help, or not.
            if trainSpec.training.recalibrateBatchNorm && run.bestEpoch > 0 {
                let kept = model.batchNorms.map { ($0.movingMean.value, $0.movingVariance.value) }
                BatchNormRecalibration.run(model: model, samples: data.train, batchSize: batch)
                let again = score("fine-tuned, recalibrated")
                if again.selection.dice > current.scores.selection.dice {
                    current = ("fine-tuned, recalibrated", again)
                } else {
                    restore(kept, into: model)
                }
            }
        }
        events(.note("chosen: \(current.name) (\(selectionSplit) Dice \(format(current.scores.selection.dice)), test Dice \(format(current.scores.test.dice)))"))
        let final = current.scores.test
        let latency = try Latency.compareInferenceLatency(baseline: baseline, compressed: model, batch: spec.latencyBatch,
                                                          imageSize: trainSpec.imageSize, runs: spec.latencyRuns, warmup: 1)
        var extra = metadata
        // A Keras baseline had no training settings: the compressed model records the ones used here.
        if extra[TrainJob.specKey] == nil { extra[TrainJob.specKey] = try OutputFiles.metadataJSON(trainSpec) }
        extra["ranksweep.compression"] = try OutputFiles.metadataJSON(spec.method)
        extra["ranksweep.chosen"] = current.name
        try OutputFiles.saveModel(model, to: outDir + "/" + modelFile, metadata: extra)
        try layersCSV(summary).write(to: outDir + "/" + layersFile)
        try candidatesCSV(candidates, chosen: current.name).write(to: outDir + "/" + candidatesFile)
        try OutputFiles.writeHistory(outcome?.history ?? [], to: outDir + "/" + historyFile)
        func recovery(_ after: Double, _ base: Double) -> Double { base > 0 ? 100 * after / base : 0 }
        let result = CompressResult(
            method: spec.method, summary: summary, baseline: baselineScore, afterFactorisation: factorised.test,
            afterRecalibration: recalibrated.test, afterFineTune: afterFineTune,
            candidates: candidates, chosen: current.name, final: final, selectionSplit: selectionSplit,
            diceRecoveryPercent: recovery(final.dice, baselineScore.dice),
            iouRecoveryPercent: recovery(final.iou, baselineScore.iou), latency: latency, latencyHost: hostName(),
            fineTuneEpochs: outcome?.history.count ?? 0, fineTuneSeconds: outcome?.seconds ?? 0,
            fineTuneHistory: outcome?.history ?? [], totalSeconds: monotonicSeconds() - start, split: data.summary)
        try OutputFiles.writeJSON(result, to: outDir + "/" + resultFile)
        return result
    }

    static func restore(_ statistics: [(Tensor, Tensor)], into model: UNet) {
        for (bn, s) in zip(model.batchNorms, statistics) { bn.movingMean.value = s.0; bn.movingVariance.value = s.1 }
    }

    static func format(_ x: Double) -> String { String(format: "%.4f", x) }

    static func hostName() -> String {
        ProcessInfo.processInfo.hostName
    }

    /// One row per candidate: its validation and test Dice, and which one was saved.
    static func candidatesCSV(_ candidates: [CompressCandidate], chosen: String) -> CSVTable {
        var table = CSVTable(header: ["candidate", "val_dice", "test_dice", "test_iou", "chosen"])
        for c in candidates {
            table.append([c.name, String(format: "%.6f", c.valDice), c.testDice.map { String(format: "%.6f", $0) } ?? "",
                          c.testIoU.map { String(format: "%.6f", $0) } ?? "", c.name == chosen ? "yes" : ""])
        }
        return table
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
                          String(format: "%.2f", d.breakEvenRank), d.rankText, String(format: "%.6f", d.energyKept),
                          String(d.parametersBefore), String(d.parametersAfter), String(d.flopsBefore), String(d.flopsAfter),
                          d.factorised ? "yes" : "no", d.skipReasonText])
        }
        return table
    }
}
