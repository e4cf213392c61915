import Basics
import Compression
import CSupport
import Engine
import Foundation
import Imaging

/// One epoch's line of the training history (and of `history.csv`).
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var trainLoss: Double, trainDice: Double, trainIoU: Double
    public var valLoss: Double, valDice: Double, valIoU: Double
    public var learningRate: Double
    public var seconds: Double
    /// Scores on the job's reporting (test) split, recorded for the comparison of candidates and
    /// never used to choose (nil when training does not score it: a baseline).
    public var testDice: Double? = nil
    public var testIoU: Double? = nil

    public static let csvHeader = ["epoch", "train_loss", "train_dice", "train_iou", "val_loss", "val_dice", "val_iou", "learning_rate", "seconds"]
    public var csvRow: [String] {
        let values = [trainLoss, trainDice, trainIoU, valLoss, valDice, valIoU, learningRate, seconds]
        return [String(epoch)] + values.map { String(format: "%.6g", $0) }
    }
}

/// What "best" means for early stopping and for the weights a run ends with.
public enum TrainingMonitor: String, Codable, Sendable {
    /// Lowest validation loss (Keras's EarlyStopping default): training a baseline.
    case validationLoss
    /// Highest validation Dice: fine-tuning a compressed model, where the job keeps the candidate
    /// with the best validation Dice.
    case validationDice
}

/// What a training run reports as it goes; the CLI draws bars from it, a worker forwards it.
public enum TrainingEvent: Sendable {
    case started(epochs: Int, stepsPerEpoch: Int, trainImages: Int, valImages: Int, momentum: Float)
    case step(epoch: Int, step: Int, steps: Int, loss: Double)
    case epochFinished(EpochRecord)
    case note(String)
}

public struct TrainingOutcome: Codable, Sendable {
    public var history: [EpochRecord]
    public var bestEpoch: Int
    public var bestValLoss: Double
    public var stoppedBy: StopReason
    public var seconds: Double
    public var finalLearningRate: Double
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
}

/// The training recipe, top to bottom: for each epoch, shuffle, augment, step Adam over the batches;
/// validate; keep the best weights by validation loss; cut the learning rate on a plateau; stop early
/// when validation stops improving; restore the best weights at the end. A NaN or infinite loss
/// stops the run with an error naming the epoch; SIGINT/SIGTERM stop it cleanly after the batch.
public final class Trainer {
    public let model: UNet
    public let settings: TrainingSettings
    let train: [SegmentationSample]
    let val: [SegmentationSample]
    let events: (TrainingEvent) -> Void
    /// A checkpoint to continue from (its settings must be these).
    public var resumeFrom: TrainingCheckpoint?
    /// Called with the loop's whole state after every completed epoch (see `TrainingCheckpoint`).
    public var checkpointSink: ((TrainingCheckpoint) throws -> Void)?
    /// What early stopping and the kept weights follow.
    public var monitor = TrainingMonitor.validationLoss
    /// The model as it enters, scored on the validation split: epoch 0, a candidate like every
    /// epoch, so a run that never improves on it ends with the weights it started from (nil: the
    /// first epoch is the first candidate, as in Keras).
    public var startingScore: EvaluationResult?
    /// Scores the model on the reporting split after each epoch's validation (`EpochRecord.testDice`).
    public var reportingScore: ((UNet) -> EvaluationResult)?
    /// Fine-tuning by distillation: each batch's targets become `(1 - weight) y + weight q`, with `q`
    /// the teacher's probabilities on the same augmented images. The binary cross-entropy is linear
    /// in its targets, so that term is exactly `(1 - w) BCE(p, y) + w BCE(p, q)` (soft targets).
    public var teacher: (model: UNet, weight: Float)?

    /// Keras ReduceLROnPlateau's default `min_delta`.
    static let plateauMinDelta = 1e-4

    public init(model: UNet, settings: TrainingSettings, train: [SegmentationSample], val: [SegmentationSample],
                events: @escaping (TrainingEvent) -> Void = { _ in }) {
        precondition(settings.problem == nil, "Trainer: \(settings.problem ?? "")")
        precondition(!train.isEmpty, "Trainer: no training samples")
        self.model = model
        self.settings = settings
        self.train = train
        self.val = val
        self.events = events
    }

    public func run() throws -> TrainingOutcome {
        let start = monotonicSeconds()
        let steps = (train.count + settings.batchSize - 1) / settings.batchSize
        let momentum = BatchNormPolicy.momentum(stepsPerEpoch: steps, explicit: settings.bnMomentum)
        for bn in model.batchNorms { bn.momentum = momentum }
        let exactValidation = settings.exactValidation ?? (steps < BatchNormPolicy.exactValidationBelowSteps)
        let adam = Adam(parameters: model.trainableParameters, learningRate: settings.learningRate)
        var shuffle = SeededGenerator(seed: settings.seed ^ 0x5348_5546)
        var augmenter = Augmenter(seed: settings.seed ^ 0x4155_4745)
        events(.started(epochs: settings.epochs, stepsPerEpoch: steps, trainImages: train.count,
                        valImages: val.count, momentum: momentum))

        var history: [EpochRecord] = []
        // The monitored value is lower-is-better (the negated Dice when monitoring Dice); epoch 0's
        // weights are the start's, so a checkpoint taken before any epoch holds them.
        var stopping = EarlyStopping(patience: settings.patience,
                                     best: startingScore.map { monitored(loss: $0.loss, dice: $0.dice) } ?? .infinity)
        var plateau = PlateauSchedule(patience: settings.lrPatience, factor: settings.lrFactor, minimum: settings.minLearningRate,
                                      minDelta: Trainer.plateauMinDelta)
        var bestWeights = model.parameters.map(\.value)
        let keepsStart = startingScore != nil
        var stoppedBy = StopReason.epochs
        var firstEpoch = 1
        if let c = resumeFrom {
            try restore(c, adam: adam, shuffle: &shuffle, augmenter: &augmenter)
            history = c.state.history
            stopping = c.state.earlyStopping
            plateau = c.state.plateau
            bestWeights = c.bestWeights.isEmpty ? model.parameters.map(\.value) : model.parameters.map { c.bestWeights[$0.name]! }
            firstEpoch = c.state.epoch + 1
            if let finished = c.state.finished { stoppedBy = finished; firstEpoch = settings.epochs + 1 }
            events(.note("resumed from epoch \(c.state.epoch)"))
        }
        /// The loop's state after `epoch`, handed to the checkpoint sink.
        func checkpoint(_ epoch: Int, finished: StopReason?) throws {
            guard let sink = checkpointSink else { return }
            let trainable = model.trainableParameters
            let (m, v) = adam.moments
            let state = TrainingCheckpoint.State(
                epoch: epoch, settings: settings, trainImages: train.count, adamStep: adam.step,
                learningRateBits: adam.learningRate.bitPattern, earlyStopping: stopping, plateau: plateau,
                shuffle: shuffle.state, augmenter: augmenter.generator.state, history: history, finished: finished)
            let names = model.parameters.map(\.name)
            try sink(TrainingCheckpoint(
                state: state, weights: Dictionary(uniqueKeysWithValues: zip(names, model.parameters.map(\.value))),
                bestWeights: stopping.bestEpoch > 0 || keepsStart ? Dictionary(uniqueKeysWithValues: zip(names, bestWeights)) : [:],
                adamM: Dictionary(uniqueKeysWithValues: zip(trainable, m).map { ($0.name, Tensor(shape: $0.value.shape, storage: $1)) }),
                adamV: Dictionary(uniqueKeysWithValues: zip(trainable, v).map { ($0.name, Tensor(shape: $0.value.shape, storage: $1)) })))
        }

        epochs: for epoch in stride(from: firstEpoch, through: settings.epochs, by: 1) {
            guard let (record, monitoredValue) = try trainEpoch(epoch, adam: adam, shuffle: &shuffle, augmenter: &augmenter, steps: steps,
                                                                exactValidation: exactValidation) else {
                stoppedBy = .interrupted
                break epochs
            }
            history.append(record)
            events(.epochFinished(record))
            switch stopping.record(monitoredValue, epoch: epoch) {
            case .improved: bestWeights = model.parameters.map(\.value)
            case .waiting: break
            case .stop:
                stoppedBy = .earlyStopping
                try checkpoint(epoch, finished: stoppedBy)
                break epochs
            }
            if let next = plateau.record(record.valLoss, learningRate: adam.learningRate) {
                events(.note("epoch \(epoch): validation loss has not improved for \(settings.lrPatience) epochs; learning rate \(adam.learningRate) -> \(next)"))
                adam.learningRate = next
            }
            try checkpoint(epoch, finished: epoch == settings.epochs ? stoppedBy : nil)
        }
        if stopping.bestEpoch > 0 || keepsStart {
            for (p, w) in zip(model.parameters, bestWeights) { p.value = w }
        }
        return TrainingOutcome(history: history, bestEpoch: stopping.bestEpoch, bestValLoss: stopping.best, stoppedBy: stoppedBy,
                               seconds: monotonicSeconds() - start, finalLearningRate: Double(adam.learningRate))
    }

    /// One epoch: the shuffled, augmented batches through forward, loss, backward and Adam, then
    /// validation. Returns the epoch's record and its monitored value, or nil when a stop was
    /// requested (SIGINT/SIGTERM) mid-epoch.
    func trainEpoch(_ epoch: Int, adam: Adam, shuffle: inout SeededGenerator, augmenter: inout Augmenter, steps: Int,
                    exactValidation: Bool) throws -> (EpochRecord, Double)? {
        let epochStart = monotonicSeconds()
        var order = Array(0..<train.count)
        order.shuffle(using: &shuffle)
        var metrics = SegmentationMetrics()
        var lossSum = 0.0
        for (step, range) in Batching.ranges(count: order.count, size: settings.batchSize).enumerated() {
            var (x, y) = Batching.batch(train, order[range])
            if settings.augment { augmenter.applyBatch(images: &x, masks: &y) }
            if let t = teacher { y = Self.distilledTargets(y, teacher: t.model.forward(x, training: false), weight: t.weight) }
            model.zeroGradients()
            let p = model.forward(x, training: true)
            let (loss, grad) = Loss.bceDice.evaluate(probabilities: p, targets: y)
            guard loss.isFinite else {
                throw TrainingError(description: "training diverged in epoch \(epoch), step \(step + 1): loss is \(loss); try a lower learning rate (now \(adam.learningRate))")
            }
            model.backward(grad)
            adam.update()
            lossSum += Double(loss) * Double(range.count)
            metrics.add(probabilities: p, targets: y)
            events(.step(epoch: epoch, step: step + 1, steps: steps, loss: Double(loss)))
            if csupport_stop_requested() != 0 { return nil }
        }
        if exactValidation { BatchNormRecalibration.run(model: model, samples: train, batchSize: settings.batchSize) }
        let v = val.isEmpty ? nil : Evaluation.evaluate(model, on: val, batchSize: settings.batchSize)
        let trainScores = metrics.scores
        var record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(train.count),
                                 trainDice: trainScores.dicePerImage, trainIoU: trainScores.iouPerImage,
                                 valLoss: v?.loss ?? lossSum / Double(train.count), valDice: v?.dice ?? .nan, valIoU: v?.iou ?? .nan,
                                 learningRate: Double(adam.learningRate), seconds: monotonicSeconds() - epochStart)
        if let score = reportingScore?(model) { record.testDice = score.dice; record.testIoU = score.iou }
        guard record.valLoss.isFinite else {
            // Recorded first, as before: the event shows the diverged epoch.
            events(.epochFinished(record))
            throw TrainingError(description: "training diverged in epoch \(epoch): validation loss is \(record.valLoss)")
        }
        return (record, monitored(loss: record.valLoss, dice: v?.dice ?? trainScores.dicePerImage))
    }

    /// The monitored value of an evaluation, lower is better.
    func monitored(loss: Double, dice: Double) -> Double {
        switch monitor {
        case .validationLoss: loss
        case .validationDice: dice.isNaN ? .infinity : -dice
        }
    }

    /// `(1 - weight) * targets + weight * teacher`, elementwise.
    static func distilledTargets(_ targets: Tensor, teacher: Tensor, weight: Float) -> Tensor {
        precondition(targets.shape == teacher.shape, "distillation: teacher output \(teacher.shape), targets \(targets.shape)")
        var out = targets
        let keep = 1 - weight
        for i in 0..<out.count { out.storage[i] = keep * targets.storage[i] + weight * teacher.storage[i] }
        return out
    }

    /// Puts a checkpoint's state into the model, the optimizer and the generators; a checkpoint of
    /// another run (settings, data, architecture) is an error naming what differs.
    func restore(_ c: TrainingCheckpoint, adam: Adam, shuffle: inout SeededGenerator, augmenter: inout Augmenter) throws {
        func fail(_ why: String) -> TrainingError { TrainingError(description: "cannot resume from \(c.source): \(why)") }
        guard c.state.settings == settings else {
            let a = String(decoding: (try? TrainingCheckpoint.encoder().encode(c.state.settings)) ?? Data(), as: UTF8.self)
            let b = String(decoding: (try? TrainingCheckpoint.encoder().encode(settings)) ?? Data(), as: UTF8.self)
            throw fail("it was written with other training settings (\(a), this run: \(b))")
        }
        guard c.state.trainImages == train.count else {
            throw fail("it was written for \(c.state.trainImages) training images, this run has \(train.count)")
        }
        // Values only, into the same Parameter objects: the optimizer holds them.
        let parameters = model.parameters
        for p in parameters {
            guard c.weights[p.name]?.shape == p.value.shape else { throw fail("it lacks weights '\(p.name)' of shape \(p.value.shape)") }
            guard c.bestWeights.isEmpty || c.bestWeights[p.name]?.shape == p.value.shape else {
                throw fail("it lacks best weights '\(p.name)' of shape \(p.value.shape)")
            }
        }
        if c.weights.count != parameters.count { throw fail("it holds \(c.weights.count) weight tensors, the model has \(parameters.count)") }
        for p in parameters { p.value = c.weights[p.name]! }
        let trainable = model.trainableParameters
        var m: [[Float]] = [], v: [[Float]] = []
        for p in trainable {
            guard let a = c.adamM[p.name], let b = c.adamV[p.name], a.shape == p.value.shape, b.shape == p.value.shape else {
                throw fail("Adam moments lack '\(p.name)' of shape \(p.value.shape)")
            }
            m.append(a.storage); v.append(b.storage)
        }
        guard adam.restore(step: c.state.adamStep, m: m, v: v) else { throw fail("Adam moments do not fit the model") }
        adam.learningRate = Float(bitPattern: c.state.learningRateBits)
        guard let s = SeededGenerator(state: c.state.shuffle), let a = SeededGenerator(state: c.state.augmenter) else {
            throw fail("a random generator's state is invalid")
        }
        shuffle = s
        augmenter.generator = a
    }
}
