import Basics

/// The job spec JSON the coordinator sends with each `train` / `compress` JOB (payload frame 0),
/// and that `ranksweep exec-job --spec FILE` reads. Plain Codable structs with the Swift property
/// names as JSON keys; the settings are the very types the training loop runs (Basics'
/// TrainingSettings, FineTuneSettings, DatasetOptions), so nothing is copied field by field.
///
/// Inputs arrive as files under the job's `--inputs` directory:
/// - `inputs/dataset/` — the unpacked dataset folder when the sweep has `data_root` (absent for synthetic data);
/// - `inputs/model.safetensors` — the baseline model (compress jobs only).
/// Outputs: the job writes `result.json` (any JSON object) and its files into `--out`; every file
/// there except `result.json` is uploaded as an artifact. A train job must write
/// `JobFiles.model` (`model.safetensors`): compress jobs receive it.
public enum JobFiles {
    /// The baseline model a train job writes and compress jobs read (under inputs/).
    public static let model = "model.safetensors"
    /// The input name of the unpacked dataset directory (under inputs/).
    public static let dataset = "dataset"
    /// The result object every job writes to its out directory.
    public static let result = "result.json"
    /// The sweep's latency profile (`compression.latency_profile`), when it has one (under inputs/).
    public static let latencyProfile = "latency-profile.json"
    /// A budget compress job's per-layer plan (under inputs/): the allocation job's `allocation.json`
    /// or `uniform-svd.json`.
    public static let plan = "allocation.json"
    /// What a sensitivity job writes and an allocation job writes merged (the sweep's table).
    public static let sensitivityTable = "sensitivity.json"
    /// The allocation job's outputs: the allocated plan and the uniform-SVD plan at the same budget.
    public static let allocationPlan = "allocation.json"
    public static let uniformSVDPlan = "uniform-svd.json"
    /// An allocation job's input pieces: `sensitivity-<job id>.json` (or the reused `sensitivity-table.json`).
    public static func sensitivityPiece(_ job: String) -> String { "sensitivity-\(job).json" }
    public static let reusedSensitivityTable = "sensitivity-table.json"
}

/// The U-Net's shape.
public struct ModelSpec: Codable, Sendable, Equatable {
    /// Filters of the first encoder level; each deeper level doubles them (16 -> 16,32,64,128 + 256).
    public var baseFilters: Int
    /// Encoder levels (pooling steps); the bottleneck has `baseFilters << depth` filters.
    public var depth: Int
    /// Input image channels (3 for RGB).
    public var channels: Int
    public init(baseFilters: Int = 16, depth: Int = 4, channels: Int = 3) {
        self.baseFilters = baseFilters; self.depth = depth; self.channels = channels
    }
}

/// The built-in synthetic dataset (generated on the worker from the seed; nothing to transfer).
public struct SyntheticSpec: Codable, Sendable, Equatable {
    /// Number of image/mask pairs.
    public var count: Int
    /// Side of the generated square images, in pixels.
    public var size: Int
    /// Generator seed (same seed, same images on every host).
    public var seed: Int
    public init(count: Int = 96, size: Int = 64, seed: Int = 7) { self.count = count; self.size = size; self.seed = seed }
}

/// Where the images come from: exactly one of the two is set.
public struct DataSpec: Codable, Sendable, Equatable {
    /// Built-in synthetic set.
    public var synthetic: SyntheticSpec?
    /// Relative path under `--inputs` of the unpacked dataset folder (`"dataset"`) when the sweep has a data root.
    public var datasetDir: String?
    /// How the dataset's images and masks are found and binarised (nil: the defaults), as the sweep file says.
    public var datasetOptions: DatasetOptions?
    /// The user's own folder (the sweep's `data_root`), for error messages: a job names the file
    /// the user gave, not the worker's cached copy.
    public var origin: String?
    public init(synthetic: SyntheticSpec? = nil, datasetDir: String? = nil, datasetOptions: DatasetOptions? = nil, origin: String? = nil) {
        self.synthetic = synthetic
        self.datasetDir = datasetDir
        self.datasetOptions = datasetOptions
        self.origin = origin
    }
}

/// Spec of a `train` job: train one baseline U-Net.
public struct TrainJobSpec: Codable, Sendable, Equatable {
    /// This job's id (e.g. `train-s42`), for names in results.
    public var job: String
    /// Seeds weight initialisation, shuffling, augmentation and the train/val split.
    public var seed: Int
    /// Images are resized to imageSize x imageSize.
    public var imageSize: Int
    public var model: ModelSpec
    /// The sweep file's `baseline` settings (Basics' TrainingSettings, the type training runs),
    /// with `seed` set to this job's seed.
    public var training: TrainingSettings
    public var data: DataSpec
    /// Fraction of images held out for validation.
    public var validationSplit: Double
}

/// Spec of a `sensitivity` job (a budget sweep): layers of the baseline (input `model.safetensors`)
/// factorised one at a time at a few candidate ranks and scored on validation, no fine-tuning.
public struct SensitivityJobSpec: Codable, Sendable, Equatable {
    public var job: String
    public var baselineJob: String
    /// `svd`, `tucker2` or `spatial-svd`.
    public var method: String
    /// Indices into the U-Net's convolutions in forward order (`4 * depth + 2` of them before the head).
    public var slots: [Int]
    public var candidates: Int
    public var seed: Int
    public var imageSize: Int
    public var model: ModelSpec
    public var data: DataSpec
    public var batchSize: Int
    public var validationSplit: Double
    public var baselineOrigin: String?
    /// The budget's latency profile as the user gave it; the file is the input `JobFiles.latencyProfile`.
    public var latencyProfile: String?
}

/// Spec of an `allocate` job: the sensitivity table's pieces (inputs `sensitivity-*.json`) become a
/// per-layer plan for one budget, and the uniform-SVD plan at the same budget.
public struct AllocationJobSpec: Codable, Sendable, Equatable {
    public var job: String
    public var baselineJob: String
    /// `params`, `flops` or `latency`.
    public var measure: String
    public var fraction: Double
    public var methods: [String]
    /// The input names of the table's pieces, in order.
    public var pieces: [String]
    /// The pieces are one table from an earlier sweep (`budget.sensitivity_table`, as the user gave it).
    public var reusedTable: String?
    public var baselineOrigin: String?
    public var latencyProfile: String?
}

/// Spec of a `compress` job: compress the baseline (input `model.safetensors`), evaluate,
/// fine-tune, evaluate again.
public struct CompressJobSpec: Codable, Sendable, Equatable {
    public var job: String
    /// The train job whose model this compresses (or `"given"` for `baseline_model`).
    public var baselineJob: String
    /// `"svd"` (fixed rank), `"arsvd"` (adaptive rank by energy fraction), `"tucker2"` or `"spatial-svd"`.
    public var method: String
    /// SVD (and the others' integer ranks): the rank r kept in every factorised layer.
    public var rank: Int?
    /// Tucker-2 / spatial SVD: a rank that is not an integer, `"auto"` (VBMF) or a fraction (`"0.25"`).
    public var rankText: String? = nil
    /// ARSVD: the fraction of singular-value energy each layer keeps (0 < tau <= 1).
    public var tau: Double?
    /// The sweep file's `fine_tune` settings (Basics' FineTuneSettings, the type CompressJob runs).
    public var fineTune: FineTuneSettings
    public var seed: Int
    public var imageSize: Int
    public var model: ModelSpec
    public var data: DataSpec
    /// Batch size of evaluation, recalibration and fine-tuning: the sweep's `baseline.batch_size`.
    public var batchSize: Int
    public var validationSplit: Double
    /// The user's own baseline file (the sweep's `baseline_model`), for error messages; nil when
    /// the baseline is the output of `baselineJob`.
    public var baselineOrigin: String?
    /// The sweep's `compression.latency_profile` as the user gave it (for messages); the file itself
    /// is the job's input `JobFiles.latencyProfile`. nil: no profile, every eligible layer factorised.
    public var latencyProfile: String? = nil
    /// A budget sweep's compress job (`method` "allocated"): the plan's label; the plan itself is the
    /// input `JobFiles.plan`.
    public var plan: String? = nil
}
