import Basics
import Compression
import Engine
import Pipeline
import Sweep

// The one place a sweep's job spec becomes Pipeline's spec. The settings are already Pipeline's own
// types (TrainingSettings, FineTuneSettings, DatasetOptions travel in the job spec unchanged); what
// is mapped here is where the data is and the model's shape. Used by the job executors (the
// executable's `exec-job`) and by the report's overlays, which must read the very split the jobs
// used. Here, in the lowest module that sees both Sweep and Pipeline.

extension DataSource {
    /// Fraction of the images held out for the test split in sweeps: the sweep file's
    /// `validation_split` is the validation fraction, and this much more is the test split.
    public static let sweepTestFraction = 0.1

    /// The data of a sweep job: the same images and split on every host. Synthetic sets are
    /// regenerated from their seed; a folder is `datasetRoot` (the job's unpacked `dataset` input,
    /// or the report's copy of it). The split seed is the job's seed, for train and compress alike.
    public init(job data: DataSpec, seed: Int, validationSplit: Double, datasetRoot: String?) {
        self.init(splitSeed: UInt64(truncatingIfNeeded: seed), validationFraction: validationSplit, testFraction: DataSource.sweepTestFraction)
        datasetOptions = data.datasetOptions
        if data.datasetDir != nil {
            root = datasetRoot
        } else if let synthetic = data.synthetic {
            syntheticCount = synthetic.count
            syntheticSeed = UInt64(truncatingIfNeeded: synthetic.seed)
        }
    }
}

extension TrainSpec {
    /// A `train` job's spec as Pipeline runs it; `inputsDir` holds the job's inputs (`dataset/`).
    public init(job: TrainJobSpec, inputsDir: String) {
        self.init(data: DataSource(job: job.data, seed: job.seed, validationSplit: job.validationSplit,
                                   datasetRoot: job.data.datasetDir.map { inputsDir + "/" + $0 }),
                  imageSize: job.imageSize,
                  model: UNetConfig(inputChannels: job.model.channels, baseFilters: job.model.baseFilters, depth: job.model.depth),
                  training: job.training)
    }
}

extension CompressSpec {
    /// A `compress` job's spec as Pipeline runs it; `inputsDir` holds the job's inputs (`dataset/`,
    /// and the latency profile when the sweep has one).
    public init(job: CompressJobSpec, inputsDir: String) throws {
        // A budget sweep's job: the plan the allocation job wrote is its input.
        let method = job.method == "allocated"
            ? CompressionMethod.allocated(try OutputFiles.readJSON(LayerPlan.self, from: inputsDir + "/" + JobFiles.plan))
            : try CompressionMethod(name: job.method, rankText: job.rankText ?? job.rank.map(String.init), tau: job.tau)
        self.init(method: method,
                  fineTune: job.fineTune,
                  data: DataSource(job: job.data, seed: job.seed, validationSplit: job.validationSplit,
                                   datasetRoot: job.data.datasetDir.map { inputsDir + "/" + $0 }),
                  batchSize: job.batchSize)
        if job.latencyProfile != nil { latencyProfile = inputsDir + "/" + JobFiles.latencyProfile }
    }
}

extension SensitivitySpec {
    /// A `sensitivity` job's spec as Pipeline runs it.
    public init(job: SensitivityJobSpec, inputsDir: String) {
        self.init(method: job.method, slots: job.slots, candidates: job.candidates,
                  data: DataSource(job: job.data, seed: job.seed, validationSplit: job.validationSplit,
                                   datasetRoot: job.data.datasetDir.map { inputsDir + "/" + $0 }),
                  batchSize: job.batchSize,
                  latencyProfile: job.latencyProfile.map { _ in inputsDir + "/" + JobFiles.latencyProfile })
    }
}

extension AllocationSpec {
    /// An `allocate` job's spec as Pipeline runs it; the table's pieces are `inputsDir/<piece>`.
    public init(job: AllocationJobSpec) throws {
        guard let measure = BudgetMeasure(rawValue: job.measure) else {
            throw CompressionError("unknown budget measure '\(job.measure)' (use params, flops or latency)")
        }
        self.init(measure: measure, fraction: job.fraction, methods: job.methods, latencyProfile: nil)
    }
}
