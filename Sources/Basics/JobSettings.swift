// The training and fine-tuning settings: one type per concern, each default defined once here.
// They sit in Basics because three modules read them: a sweep file sets them (Sweep), they travel
// unchanged inside job specs, and the training loop runs them (Pipeline).

/// Training hyper-parameters. Defaults are the seed pipeline's (Keras callbacks):
/// EarlyStopping(val_loss, patience 15, restore best) and ReduceLROnPlateau(val_loss, factor 0.1,
/// patience 4, min_lr 1e-7, min_delta 1e-4).
public struct TrainingSettings: Codable, Sendable, Equatable {
    public var epochs: Int = 100
    public var batchSize: Int = 16
    public var learningRate: Float = 1e-4
    public var patience: Int = 15
    public var lrPatience: Int = 4
    public var lrFactor: Float = 0.1
    public var minLearningRate: Float = 1e-7
    public var augment: Bool = true
    /// Seed of initialisation, shuffling and augmentation.
    public var seed: UInt64 = 42
    /// BatchNorm momentum; nil = adapted to the steps per epoch (see `BatchNormPolicy`).
    public var bnMomentum: Float? = nil
    /// Recalibrate BatchNorm statistics on the training set before the final model is saved and scored.
    public var recalibrateBatchNorm: Bool = true
    /// Recalibrate before each validation pass: nil = when an epoch has fewer than
    /// `BatchNormPolicy.exactValidationBelowSteps` steps; false reproduces Keras's behaviour.
    public var exactValidation: Bool? = nil

    public init() {}

    /// The defaults with the given values replacing them (nil: the default).
    public init(epochs: Int? = nil, batchSize: Int? = nil, learningRate: Float? = nil, patience: Int? = nil, lrPatience: Int? = nil,
                augment: Bool? = nil) {
        self.init()
        if let epochs { self.epochs = epochs }
        if let batchSize { self.batchSize = batchSize }
        if let learningRate { self.learningRate = learningRate }
        if let patience { self.patience = patience }
        if let lrPatience { self.lrPatience = lrPatience }
        if let augment { self.augment = augment }
    }

    private enum CodingKeys: String, CodingKey {
        case epochs, batchSize, learningRate, patience, lrPatience, lrFactor, minLearningRate, augment, seed, bnMomentum
        case recalibrateBatchNorm, exactValidation
    }

    /// Absent keys take the defaults (a hand-written job spec, a model file older than a field).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? epochs
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? learningRate
        patience = try c.decodeIfPresent(Int.self, forKey: .patience) ?? patience
        lrPatience = try c.decodeIfPresent(Int.self, forKey: .lrPatience) ?? lrPatience
        lrFactor = try c.decodeIfPresent(Float.self, forKey: .lrFactor) ?? lrFactor
        minLearningRate = try c.decodeIfPresent(Float.self, forKey: .minLearningRate) ?? minLearningRate
        augment = try c.decodeIfPresent(Bool.self, forKey: .augment) ?? augment
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        bnMomentum = try c.decodeIfPresent(Float.self, forKey: .bnMomentum)
        recalibrateBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .recalibrateBatchNorm) ?? recalibrateBatchNorm
        exactValidation = try c.decodeIfPresent(Bool.self, forKey: .exactValidation)
    }

    /// A one-line reason these settings cannot run, or nil.
    public var problem: String? {
        if epochs < 1 { return "epochs must be at least 1, got \(epochs)" }
        if batchSize < 1 { return "batch size must be at least 1, got \(batchSize)" }
        if !(learningRate > 0 && learningRate.isFinite) { return "learning rate must be positive, got \(learningRate)" }
        if patience < 1 { return "patience must be at least 1, got \(patience)" }
        if lrPatience < 1 { return "LR patience must be at least 1, got \(lrPatience)" }
        if let m = bnMomentum, !(m >= 0 && m < 1) { return "BatchNorm momentum must be in [0, 1), got \(m)" }
        return nil
    }
}

/// Fine-tuning after compression (defaults: 5 epochs, learning rate 1e-5, early stopping with
/// patience 2 restoring the best weights; no LR schedule within so few epochs).
public struct FineTuneSettings: Codable, Sendable, Equatable {
    public var epochs: Int = 5
    public var learningRate: Float = 1e-5
    public var patience: Int = 2
    /// Weight of the baseline's probabilities as soft targets (knowledge distillation), in [0, 1);
    /// 0: the masks alone.
    public var distill: Double = 0
    public init() {}

    /// The defaults with the given values replacing them (nil: the default).
    public init(epochs: Int? = nil, learningRate: Float? = nil, patience: Int? = nil, distill: Double? = nil) {
        self.init()
        if let epochs { self.epochs = epochs }
        if let learningRate { self.learningRate = learningRate }
        if let patience { self.patience = patience }
        if let distill { self.distill = distill }
    }

    private enum CodingKeys: String, CodingKey { case epochs, learningRate, patience, distill }

    /// Absent keys take the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(epochs: try c.decodeIfPresent(Int.self, forKey: .epochs), learningRate: try c.decodeIfPresent(Float.self, forKey: .learningRate),
                  patience: try c.decodeIfPresent(Int.self, forKey: .patience), distill: try c.decodeIfPresent(Double.self, forKey: .distill))
    }

    /// `distill` only when set, so job specs of sweeps without it read as they always did.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(patience, forKey: .patience)
        if distill != 0 { try c.encode(distill, forKey: .distill) }
    }

    /// A one-line reason these settings cannot run, or nil.
    public var problem: String? {
        if epochs < 0 { return "fine-tune epochs cannot be negative, got \(epochs)" }
        if !(learningRate > 0 && learningRate.isFinite) { return "fine-tune learning rate must be positive, got \(learningRate)" }
        if patience < 1 { return "fine-tune patience must be at least 1, got \(patience)" }
        if !(distill >= 0 && distill < 1) { return "fine-tune distill weight must be in [0, 1), got \(distill)" }
        return nil
    }
}
