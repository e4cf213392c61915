import Basics
import Engine
import Foundation

/// The training loop's whole state after an epoch, so a run killed later continues bit-identically
/// (same CPU kind and thread count): weights, Adam's moments and step count, the learning-rate
/// schedule and early-stopping state (best weights, best loss, patience counters), the shuffle
/// and augmentation generators, and the history so far.
///
/// One file format: safetensors (as models are written) with tensors `weights/NAME`, `best/NAME`
/// (the best weights, when an epoch improved), `adam_m/NAME`, `adam_v/NAME` (trainable ones), and
/// the rest as JSON in the metadata key `ranksweep.checkpoint`. Floats that must survive exactly
/// (learning rate, losses) are stored as their bit patterns. Written atomically (AtomicFile).
public struct TrainingCheckpoint: Sendable {
    public static let metadataKey = "ranksweep.checkpoint"
    public static let format = "ranksweep-checkpoint-1"
    /// The file `ranksweep train` keeps in its out dir (and `--resume` reads).
    public static let fileName = "checkpoint"

    public struct State: Codable, Sendable, Equatable {
        public var format = TrainingCheckpoint.format
        /// Epochs completed.
        public var epoch: Int
        /// The settings the run trained with: a checkpoint resumes only the same run.
        public var settings: TrainingSettings
        public var trainImages: Int
        public var adamStep: Int
        public var learningRateBits: UInt32
        /// Early stopping's and the learning-rate schedule's state, whole.
        public var earlyStopping: EarlyStopping
        public var plateau: PlateauSchedule
        public var shuffle: [UInt64]
        public var augmenter: [UInt64]
        public var history: [EpochRecord]
        /// Why training ended when it ended at this epoch; nil while it goes on.
        public var finished: StopReason?

        public init(epoch: Int, settings: TrainingSettings, trainImages: Int, adamStep: Int, learningRateBits: UInt32,
                    earlyStopping: EarlyStopping, plateau: PlateauSchedule, shuffle: [UInt64], augmenter: [UInt64],
                    history: [EpochRecord], finished: StopReason?) {
            self.epoch = epoch; self.settings = settings; self.trainImages = trainImages; self.adamStep = adamStep
            self.learningRateBits = learningRateBits; self.earlyStopping = earlyStopping; self.plateau = plateau
            self.shuffle = shuffle; self.augmenter = augmenter; self.history = history; self.finished = finished
        }

        private enum CodingKeys: String, CodingKey {
            case format, epoch, settings, trainImages, adamStep, learningRateBits, earlyStopping, plateau, shuffle, augmenter, history, finished
            // Before the schedules were types of their own (read, never written).
            case bestLossBits, bestEpoch, sinceBest, plateauBestBits, sincePlateauBest
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            format = try c.decode(String.self, forKey: .format)
            epoch = try c.decode(Int.self, forKey: .epoch)
            settings = try c.decode(TrainingSettings.self, forKey: .settings)
            trainImages = try c.decode(Int.self, forKey: .trainImages)
            adamStep = try c.decode(Int.self, forKey: .adamStep)
            learningRateBits = try c.decode(UInt32.self, forKey: .learningRateBits)
            shuffle = try c.decode([UInt64].self, forKey: .shuffle)
            augmenter = try c.decode([UInt64].self, forKey: .augmenter)
            history = try c.decode([EpochRecord].self, forKey: .history)
            finished = try c.decodeIfPresent(StopReason.self, forKey: .finished)
            if c.contains(.earlyStopping) {
                earlyStopping = try c.decode(EarlyStopping.self, forKey: .earlyStopping)
                plateau = try c.decode(PlateauSchedule.self, forKey: .plateau)
            } else {
                // A checkpoint of an earlier ranksweep: the same counts, spelled flat.
                earlyStopping = EarlyStopping(patience: settings.patience, best: Double(bitPattern: try c.decode(UInt64.self, forKey: .bestLossBits)))
                earlyStopping.bestEpoch = try c.decode(Int.self, forKey: .bestEpoch)
                earlyStopping.sinceBest = try c.decode(Int.self, forKey: .sinceBest)
                plateau = PlateauSchedule(patience: settings.lrPatience, factor: settings.lrFactor, minimum: settings.minLearningRate,
                                          minDelta: Trainer.plateauMinDelta)
                plateau.bestBits = try c.decode(UInt64.self, forKey: .plateauBestBits)
                plateau.sinceBest = try c.decode(Int.self, forKey: .sincePlateauBest)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(format, forKey: .format)
            try c.encode(epoch, forKey: .epoch)
            try c.encode(settings, forKey: .settings)
            try c.encode(trainImages, forKey: .trainImages)
            try c.encode(adamStep, forKey: .adamStep)
            try c.encode(learningRateBits, forKey: .learningRateBits)
            try c.encode(earlyStopping, forKey: .earlyStopping)
            try c.encode(plateau, forKey: .plateau)
            try c.encode(shuffle, forKey: .shuffle)
            try c.encode(augmenter, forKey: .augmenter)
            try c.encode(history, forKey: .history)
            try c.encodeIfPresent(finished, forKey: .finished)
        }
    }

    public var state: State
    public var weights: [String: Tensor]
    public var bestWeights: [String: Tensor]
    public var adamM: [String: Tensor]
    public var adamV: [String: Tensor]
    /// The file it was read from (for messages); not stored.
    public var source = "checkpoint"

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public func write(to path: String) throws {
        var tensors: [String: Tensor] = [:]
        for (prefix, group) in [("weights/", weights), ("best/", bestWeights), ("adam_m/", adamM), ("adam_v/", adamV)] {
            for (name, t) in group { tensors[prefix + name] = t }
        }
        let json = String(decoding: try TrainingCheckpoint.encoder().encode(state), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: [TrainingCheckpoint.metadataKey: json], to: path)
    }

    /// Reads and checks a checkpoint; anything wrong is a `ModelFileError` naming the file.
    public static func read(path: String) throws -> TrainingCheckpoint {
        let (tensors, metadata) = try SafeTensors.read(path: path)
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: reason) }
        guard let json = metadata[metadataKey] else { throw fail("not a ranksweep checkpoint (no \(metadataKey) in its metadata)") }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let state: State
        do { state = try decoder.decode(State.self, from: Data(json.utf8)) } catch {
            throw fail("unreadable checkpoint state (\(error))")
        }
        guard state.format == format else { throw fail("checkpoint format \(state.format.prefix(40)), expected \(format)") }
        guard state.epoch >= 1, state.epoch <= state.settings.epochs, state.history.count == state.epoch,
              state.earlyStopping.bestEpoch >= 0, state.earlyStopping.bestEpoch <= state.epoch, state.adamStep >= 0, state.trainImages >= 1,
              state.earlyStopping.sinceBest >= 0, state.plateau.sinceBest >= 0, state.shuffle.count == 4, state.augmenter.count == 4 else {
            throw fail("inconsistent checkpoint state (epoch \(state.epoch) of \(state.settings.epochs), \(state.history.count) history rows)")
        }
        var groups: [String: [String: Tensor]] = ["weights/": [:], "best/": [:], "adam_m/": [:], "adam_v/": [:]]
        for (name, t) in tensors {
            guard let prefix = groups.keys.first(where: { name.hasPrefix($0) }) else { throw fail("unexpected tensor '\(name)'") }
            groups[prefix]![String(name.dropFirst(prefix.count))] = t
        }
        return TrainingCheckpoint(state: state, weights: groups["weights/"]!, bestWeights: groups["best/"]!,
                                  adamM: groups["adam_m/"]!, adamV: groups["adam_v/"]!, source: path)
    }
}

/// Where a run writes its checkpoints and what it resumes from.
public struct Checkpointing: Sendable {
    /// The path of epoch k's checkpoint (nil: none written).
    public var path: (@Sendable (Int) -> String)?
    /// Told after each checkpoint is written: the epoch and the path.
    public var written: (@Sendable (Int, String) -> Void)?
    /// A checkpoint file to continue from.
    public var resumeFrom: String?

    public init(path: (@Sendable (Int) -> String)? = nil, written: (@Sendable (Int, String) -> Void)? = nil, resumeFrom: String? = nil) {
        self.path = path; self.written = written; self.resumeFrom = resumeFrom
    }

    public static let none = Checkpointing()

    /// `ranksweep train --out-dir D [--resume]`: a checkpoint D/checkpoint after every epoch, and with
    /// `resume` a start from it when there is one (else from epoch 1, said in the log).
    public static func inFolder(_ outDir: String, resume: Bool) -> Checkpointing {
        let file = outDir + "/" + TrainingCheckpoint.fileName
        var checkpoints = Checkpointing(path: { _ in file })
        if resume {
            if FileManager.default.fileExists(atPath: file) { checkpoints.resumeFrom = file } else { Log.info("--resume: no \(file) yet; starting from epoch 1") }
        }
        return checkpoints
    }

    /// The run's checkpoint (read and checked), or nil when it starts afresh.
    func load() throws -> TrainingCheckpoint? { try resumeFrom.map { try TrainingCheckpoint.read(path: $0) } }

    /// The sink a Trainer calls after each epoch.
    func sink() -> ((TrainingCheckpoint) throws -> Void)? {
        guard let path else { return nil }
        let written = self.written
        return { checkpoint in
            let file = path(checkpoint.state.epoch)
            try checkpoint.write(to: file)
            written?(checkpoint.state.epoch, file)
        }
    }
}
