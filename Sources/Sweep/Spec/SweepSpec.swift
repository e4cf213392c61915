import Basics
import Foundation
import Yams

/// A sweep file (YAML). Every key is optional — an absent one takes the default of the type it sets
/// (TrainingSettings, FineTuneSettings, DatasetOptions, SyntheticSpec, ModelSpec, this struct's
/// properties), never a literal repeated here; unknown keys and bad values are errors naming the
/// key and the file. A file with only test job lists (`noop`, `sleep`, `jobs`) has no pipeline.
///
/// ```yaml
/// data_root: data/isic          # or: synthetic: {count: 96, size: 64, seed: 7}
/// dataset: {images_dir: scans, masks_dir: labels, mask_suffix: _gt, mask_threshold: 127, skip_unmatched: false}   # optional
/// image_size: 64
/// model: {base_filters: 16, depth: 4, channels: 3}
/// baseline: {epochs: 100, batch_size: 16, lr: 0.0001, patience: 15, lr_patience: 4, augment: true}
/// compression: {svd_ranks: [50, 100, 150], arsvd_taus: [0.95, 0.9, 0.85], latency_profile: target.json}   # profile: optional
/// #   also tucker2_ranks / spatial_svd_ranks: [16, 0.25, auto] (rank, fraction of channels, VBMF), tucker2_taus / spatial_svd_taus: [0.9]
/// fine_tune: {epochs: 5, lr: 0.00001, patience: 2, distill: 0}
/// # Grid axes: a list at baseline lr/epochs/batch_size/augment, model base_filters/depth,
/// # image_size, fine_tune lr/epochs (and seeds); the grid is their product (SweepAxes).
/// seeds: [42]
/// target: {recovery: 0.99, method: both, max_jobs: 8, rank_range: [1, 256], tau_range: [0.5, 0.999]}   # a question instead of a grid
/// budget: {params: [0.1, 0.2]}      # or flops: 0.4, or latency: 0.6 with latency_profile: target.json; sensitivity_table: old.json
/// methods: [svd, tucker2]           # a budget's methods (also budget.methods); candidates: 8 ranks tried per layer
/// max_attempts: 3
/// job_timeout: 3600                  # seconds per attempt (optional; default none): longer is cancelled and fails
/// checkpoint_seconds: 60             # train/fine-tune jobs upload their newest checkpoint at most this often (and at SIGTERM)
/// baseline_model: model.safetensors   # optional: skip training, compress this model
/// validation_split: 0.1              # val fraction; 10% more is the test split
/// noop: 1000                          # test/bench jobs
/// sleep: {count: 4, seconds: 0.5, in_child: false, produce_bytes: 0, with_dataset: false}
/// jobs: [{kind: fail, count: 1, spec: {message: "boom"}}]   # any exec-job kind
/// ```
public struct SweepSpec: Sendable, Equatable {
    public var dataRoot: String?
    public var synthetic: SyntheticSpec?
    /// How the data root's images and masks are found and binarised (nil: automatic layouts, defaults).
    public var datasetOptions: DatasetOptions?
    public var imageSize = 64
    public var model = ModelSpec()
    /// True when the file gave `model.channels`; otherwise the channels follow the data's own kind
    /// (gray when every image is gray), settled before the sweep starts.
    public var channelsGiven = false
    public var training = TrainingSettings()
    /// Settings the file gave as lists (the grid); the scalar fields above hold each list's first value.
    public var axes = SweepAxes()
    public var svdRanks: [Int] = [50, 100, 150]
    public var arsvdTaus: [Double] = [0.95, 0.9, 0.85]
    /// Tucker-2 and spatial-SVD settings (none by default): ranks as spelled (`16`, `0.25`, `auto`), and taus.
    public var tucker2Ranks: [String] = []
    public var tucker2Taus: [Double] = []
    public var spatialSVDRanks: [String] = []
    public var spatialSVDTaus: [Double] = []
    public var fineTune = FineTuneSettings()
    /// `compression.latency_profile`: a `ranksweep profile-layers` file, shipped to every compress
    /// job, whose pairs no faster than their full layer stay full (nil: every eligible layer is factorised).
    public var latencyProfile: String?
    public var seeds: [Int] = [42]
    /// A targeted search (`target:`): the coordinator bisects rank/tau per baseline instead of a fixed grid.
    public var target: TargetSpec?
    /// A budget (`budget:`): per-layer ranks from a sensitivity analysis, allocated to fit the budget.
    public var budget: BudgetSpec?
    public var maxAttempts = 3
    /// Seconds an attempt may run (from dispatch) before the coordinator cancels it; nil: no limit.
    public var jobTimeout: Double?
    /// Train and fine-tune jobs upload their newest checkpoint at most this often (seconds; 0: every epoch).
    public var checkpointSeconds = 60.0
    public var baselineModel: String?
    public var validationSplit = 0.1
    /// Whether the train/compress pipeline is part of this sweep.
    public var pipeline = true
    public var noop = 0
    public var sleep: SleepJobs?
    public var extraJobs: [ExtraJobs] = []

    public struct SleepJobs: Sendable, Equatable {
        public var count = 1
        public var seconds = 1.0
        /// Run through `exec-job` in a child process instead of a worker thread.
        public var inChild = false
        /// The child writes an output file of this many bytes (exercises artifact upload).
        public var produceBytes = 0
        /// The job gets the dataset archive as input (exercises artifact download).
        public var withDataset = false
        public init(count: Int = 1, seconds: Double = 1.0) { self.count = count; self.seconds = seconds }
    }

    public struct ExtraJobs: Sendable, Equatable {
        public var kind: String
        public var count: Int
        /// Spec JSON text.
        public var spec: String
    }

    public init() {}

    /// The top-level keys that make a sweep run the train/compress pipeline.
    public static let pipelineKeys: Set<String> = ["data_root", "synthetic", "image_size", "model", "baseline", "compression",
                                                   "fine_tune", "seeds", "baseline_model", "validation_split", "dataset", "target",
                                                   "budget", "methods", "candidates"]

    /// The sweep `ranksweep run` uses with no file: the whole pipeline on the synthetic set.
    public static var defaultPipeline: SweepSpec {
        var s = SweepSpec()
        s.synthetic = SyntheticSpec()
        // Small enough to finish in a few minutes on two cores, large enough to learn the task.
        s.training = TrainingSettings(epochs: 8, batchSize: 8, learningRate: 1e-3, patience: 5, lrPatience: 3)
        s.fineTune = FineTuneSettings(epochs: 3, learningRate: 1e-4)
        return s
    }

    /// Reads a sweep file. Its paths (`data_root`, `baseline_model`) are relative to the file's
    /// folder, as a user reading the file expects, and become absolute here, once.
    public static func load(path: String) throws -> SweepSpec {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SweepError.invalid("sweep file \(path) cannot be read")
        }
        var spec = try parse(yaml: text, file: path)
        let folder = (UserPath.absolute(path) as NSString).deletingLastPathComponent
        spec.dataRoot = spec.dataRoot.map { UserPath.absolute($0, relativeTo: folder) }
        spec.baselineModel = spec.baselineModel.map { UserPath.absolute($0, relativeTo: folder) }
        spec.latencyProfile = spec.latencyProfile.map { UserPath.absolute($0, relativeTo: folder) }
        if var budget = spec.budget {
            budget.latencyProfile = budget.latencyProfile.map { UserPath.absolute($0, relativeTo: folder) }
            budget.sensitivityTable = budget.sensitivityTable.map { UserPath.absolute($0, relativeTo: folder) }
            spec.budget = budget
        }
        return spec
    }

    public static func parse(yaml: String, file: String) throws -> SweepSpec {
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch {
            throw SweepError.invalid("\(file): \(YAMLProblem.describe(error, in: yaml))")
        }
        var spec = SweepSpec()
        guard let root = node else { throw SweepError.invalid("\(file): empty sweep file") }
        let m = try YAMLMap(root, path: "", file: file)
        spec.pipeline = !m.keys.isDisjoint(with: pipelineKeys) || m.keys.isEmpty
        // One function per section, in the file's reading order (an error names the first bad key).
        try spec.parseData(m)
        try spec.parseModel(m)
        try spec.parseBaseline(m)
        let gridGiven = try spec.parseCompression(m)
        try spec.parseFineTune(m)
        spec.seeds = try m.intAxis("seeds", min: nil) ?? spec.seeds
        try spec.parseTarget(m, gridGiven: gridGiven)
        try spec.parseBudget(m, gridGiven: gridGiven)
        try spec.parseRunSettings(m)
        try spec.parseTestJobs(m)
        try m.finish()
        if spec.baselineModel != nil, let key = spec.axes.trainingOnlyAxis {
            throw m.error("baseline_model", "gives the baseline, so a list at \(key) has nothing to train")
        }
        return spec
    }
}

// The sweep file's sections, one function each (`SweepSpec.parse` calls them in order).
extension SweepSpec {
    /// `data_root`, `synthetic`, `dataset`.
    mutating func parseData(_ m: YAMLMap) throws {
        dataRoot = try m.string("data_root")
        if let s = try m.map("synthetic") {
            let defaults = SyntheticSpec()
            synthetic = SyntheticSpec(count: try s.int("count", min: 1) ?? defaults.count, size: try s.int("size", min: 8) ?? defaults.size,
                                           seed: try s.int("seed") ?? defaults.seed)
            try s.finish()
        }
        if let s = try m.map("dataset") {
            var o = DatasetOptions()
            o.imagesDir = try s.string("images_dir")
            o.masksDir = try s.string("masks_dir")
            o.maskSuffix = try s.string("mask_suffix")
            o.maskThreshold = try s.int("mask_threshold", min: 0) ?? o.maskThreshold
            o.skipUnmatched = try s.bool("skip_unmatched") ?? o.skipUnmatched
            try s.finish()
            if let problem = o.problem { throw m.error("dataset", problem) }
            datasetOptions = o
        }
        if dataRoot != nil && synthetic != nil { throw m.error("data_root", "give data_root or synthetic, not both") }
        if pipeline && dataRoot == nil && synthetic == nil { synthetic = SyntheticSpec() }
    }

    /// `image_size` and `model`.
    mutating func parseModel(_ m: YAMLMap) throws {
        axes.imageSize = try m.intAxis("image_size", min: 8)
        imageSize = axes.imageSize?.first ?? imageSize
        if let s = try m.map("model") {
            let channels = try s.int("channels", min: 1)
            if let c = channels, c != 1 && c != 3 { throw s.error("channels", "must be 1 (gray) or 3 (RGB), got \(c)") }
            channelsGiven = channels != nil
            let defaults = ModelSpec()
            axes.baseFilters = try s.intAxis("base_filters", min: 1)
            axes.depth = try s.intAxis("depth", min: 1)
            model = ModelSpec(baseFilters: axes.baseFilters?.first ?? defaults.baseFilters,
                                   depth: axes.depth?.first ?? defaults.depth, channels: channels ?? defaults.channels)
            try s.finish()
        }
    }

    /// `baseline`: the training settings (grid axes allowed).
    mutating func parseBaseline(_ m: YAMLMap) throws {
        if let s = try m.map("baseline") {
            axes.epochs = try s.intAxis("epochs", min: 1)
            axes.batchSize = try s.intAxis("batch_size", min: 1)
            axes.learningRate = try s.floatAxis("lr")
            axes.augment = try s.boolAxis("augment")
            training = TrainingSettings(epochs: axes.epochs?.first, batchSize: axes.batchSize?.first,
                                             learningRate: axes.learningRate?.first,
                                             patience: try s.int("patience", min: 1), lrPatience: try s.int("lr_patience", min: 1),
                                             augment: axes.augment?.first)
            try s.finish()
        }
    }

    /// `compression`: the grid of methods and settings, the latency profile; whether a grid was given.
    mutating func parseCompression(_ m: YAMLMap) throws -> Bool {
        var gridGiven = false
        if let s = try m.map("compression") {
            let gridKeys = ["svd_ranks", "arsvd_taus", "tucker2_ranks", "tucker2_taus", "spatial_svd_ranks", "spatial_svd_taus"]
            gridGiven = gridKeys.contains { s.keys.contains($0) }
            svdRanks = try s.intList("svd_ranks", min: 1) ?? svdRanks
            arsvdTaus = try s.doubleList("arsvd_taus", range: 0 ... 1, excludingZero: true) ?? arsvdTaus
            tucker2Ranks = try s.rankList("tucker2_ranks") ?? []
            tucker2Taus = try s.doubleList("tucker2_taus", range: 0 ... 1, excludingZero: true) ?? []
            spatialSVDRanks = try s.rankList("spatial_svd_ranks") ?? []
            spatialSVDTaus = try s.doubleList("spatial_svd_taus", range: 0 ... 1, excludingZero: true) ?? []
            // Giving only the new methods' keys replaces the default SVD/ARSVD grid.
            if !s.keys.contains("svd_ranks") && !s.keys.contains("arsvd_taus") && gridGiven { svdRanks = []; arsvdTaus = [] }
            latencyProfile = try s.string("latency_profile")
            // Timing on the worker that ran the job made results depend on its load; only `false`
            // (what every job now does) is still accepted, for older sweep files.
            if try s.bool("layer_timing") == true {
                throw s.error("layer_timing", "was removed: compression no longer times layers on the worker (results would depend on its load); "
                              + "measure the deployment target once with `ranksweep profile-layers` and give the file as compression.latency_profile")
            }
            try s.finish()
        }
        return gridGiven
    }

    /// `fine_tune` (grid axes allowed).
    mutating func parseFineTune(_ m: YAMLMap) throws {
        if let s = try m.map("fine_tune") {
            axes.fineTuneEpochs = try s.intAxis("epochs", min: 0)
            axes.fineTuneLearningRate = try s.floatAxis("lr")
            let distill = try s.double("distill", positive: false)
            if let d = distill, !(d < 1) { throw s.error("distill", "is the weight of the baseline's soft targets, in [0, 1), got \(d)") }
            fineTune = FineTuneSettings(epochs: axes.fineTuneEpochs?.first, learningRate: axes.fineTuneLearningRate?.first,
                                             patience: try s.int("patience", min: 1), distill: distill)
            try s.finish()
        }
    }

    /// `target`: a question instead of a grid.
    mutating func parseTarget(_ m: YAMLMap, gridGiven: Bool) throws {
        if let t = try m.map("target") {
            var target = TargetSpec()
            guard let recovery = try t.double("recovery", positive: true) else { throw m.error("target", "needs recovery (e.g. 0.99: keep 99% of the baseline's Dice)") }
            // A share, not a percentage (a short-trained baseline can be beaten after fine-tuning: up to 2).
            if recovery > 2 { throw t.error("recovery", "is a share of the baseline's Dice (0.99 keeps 99%), got \(recovery)") }
            target.recovery = recovery
            if let method = try t.string("method") {
                guard let methods = TargetSpec.methods(method) else { throw t.error("method", "must be svd, arsvd, tucker2, spatial-svd, both (svd and arsvd) or all, got \(method)") }
                target.methods = methods
            }
            target.maxJobs = try t.int("max_jobs", min: 1) ?? target.maxJobs
            if let r = try t.intList("rank_range", min: 1) {
                guard r.count == 2, r[0] <= r[1] else { throw t.error("rank_range", "must be [lowest, highest] rank") }
                target.rankRange = r
            }
            if let r = try t.doubleList("tau_range", range: 0 ... 1, excludingZero: true) {
                guard r.count == 2, r[0] < r[1] else { throw t.error("tau_range", "must be [lowest, highest] tau") }
                target.tauRange = r
            }
            try t.finish()
            self.target = target
            // The question replaces the grid unless the file asks for a grid too.
            // (`compression: {latency_profile: …}` alone is not a grid.)
            if !gridGiven { svdRanks = []; arsvdTaus = [] }
            if !gridGiven { tucker2Ranks = []; tucker2Taus = []; spatialSVDRanks = []; spatialSVDTaus = [] }
        }
    }

    /// `budget` (with `methods`, `candidates`).
    mutating func parseBudget(_ m: YAMLMap, gridGiven: Bool) throws {
        if let given = try BudgetSpec.parse(m, latencyProfile: latencyProfile) {
            budget = given
            // The question replaces the default grid unless the file asks for a grid too.
            if !gridGiven { svdRanks = []; arsvdTaus = [] }
        }
    }

    /// `max_attempts`, `job_timeout`, `checkpoint_seconds`, `baseline_model`, `validation_split`.
    mutating func parseRunSettings(_ m: YAMLMap) throws {
        maxAttempts = try m.int("max_attempts", min: 1) ?? maxAttempts
        jobTimeout = try m.double("job_timeout", positive: true)
        checkpointSeconds = try m.double("checkpoint_seconds", positive: false) ?? checkpointSeconds
        baselineModel = try m.string("baseline_model")
        validationSplit = try m.double("validation_split", positive: true) ?? validationSplit
        if validationSplit >= 0.9 { throw m.error("validation_split", "must be below 0.9 (10% is kept for the test split)") }
    }

    /// The test and benchmark jobs: `noop`, `sleep`, `jobs`.
    mutating func parseTestJobs(_ m: YAMLMap) throws {
        noop = try m.int("noop", min: 0) ?? noop
        if let s = try m.map("sleep") {
            var j = SleepJobs()
            j.count = try s.int("count", min: 0) ?? j.count
            j.seconds = try s.double("seconds", positive: false) ?? j.seconds
            j.inChild = try s.bool("in_child") ?? j.inChild
            j.produceBytes = try s.int("produce_bytes", min: 0) ?? j.produceBytes
            j.withDataset = try s.bool("with_dataset") ?? j.withDataset
            try s.finish()
            sleep = j
        }
        if let list = try m.sequence("jobs") {
            for (i, item) in list.enumerated() {
                let s = try YAMLMap(item, path: "jobs[\(i)].", file: m.file)
                guard let kind = try s.string("kind") else { throw s.error("kind", "is required") }
                let count = try s.int("count", min: 0) ?? 1
                var specJSON = "{}"
                if let n = s.raw("spec") {
                    guard let data = try? JSONSerialization.data(withJSONObject: n.any, options: [.sortedKeys]) else {
                        throw s.error("spec", "must be a mapping")
                    }
                    specJSON = String(decoding: data, as: UTF8.self)
                }
                try s.finish()
                extraJobs.append(ExtraJobs(kind: kind, count: count, spec: specJSON))
            }
        }
    }
}

/// `target:` — the most compressive setting whose Dice after fine-tuning keeps `recovery` of the
/// baseline's, searched per method and baseline within `maxJobs` compress jobs (TargetSearch).
public struct TargetSpec: Sendable, Equatable {
    public var recovery = 0.99
    /// Any of `allMethods` (`both`: svd and arsvd, the default; `all`: every method).
    public var methods = ["svd", "arsvd"]
    public var maxJobs = 8
    /// [lowest, highest] rank searched; nil: 1 up to the bottleneck's channels (`base_filters << depth`).
    public var rankRange: [Int]?
    /// [lowest, highest] tau searched, in steps of `tauStep`.
    public var tauRange = [0.5, 0.999]
    public static let tauStep = 0.001
    public init() {}

    /// Every compression method's name (as `CompressionMethod.names`; Sweep does not link Compression).
    public static let allMethods = ["svd", "arsvd", "tucker2", "spatial-svd"]

    static func methods(_ name: String) -> [String]? {
        switch name {
        case "both": return ["svd", "arsvd"]
        case "all": return allMethods
        default: return allMethods.contains(name) ? [name] : nil
        }
    }

    /// Whether a method's setting is an integer rank (every method but ARSVD, searched by tau).
    public static func searchesRanks(_ method: String) -> Bool { method != "arsvd" }

    /// The settings searched for a method, most compressive first.
    public func candidates(method: String, model: ModelSpec) -> [Double] {
        if TargetSpec.searchesRanks(method) {
            let r = rankRange ?? [1, max(1, model.baseFilters << model.depth)]
            return (r[0] ... r[1]).map(Double.init)
        }
        let lo = Int((tauRange[0] / TargetSpec.tauStep).rounded()), hi = Int((tauRange[1] / TargetSpec.tauStep).rounded())
        return (lo ... max(lo, hi)).map { (Double($0) * TargetSpec.tauStep * 1000).rounded() / 1000 }
    }
}

/// `budget:` — the best model within a budget: sensitivity jobs measure every layer factorised alone
/// at `candidates` ranks per method, an allocation job per budget picks a rank per layer (a knapsack
/// over the measured losses), and compress jobs fine-tune that plan and the uniform-SVD model at the
/// same budget, both through the chooser.
public struct BudgetSpec: Sendable, Equatable {
    /// `params`, `flops` or `latency`.
    public var measure = "params"
    /// Fractions of the baseline to keep, each a budget of its own (they share one sensitivity table).
    public var fractions: [Double] = []
    public var methods = ["svd", "tucker2"]
    public var candidates = 8
    /// A latency budget's profile (`budget.latency_profile`, or `compression.latency_profile`).
    public var latencyProfile: String?
    /// A table from an earlier sweep on the same baseline (its report's `sensitivity.json`): no
    /// sensitivity jobs, the allocation reads it.
    public var sensitivityTable: String?
    public init() {}

    public static let measures = ["params", "flops", "latency"]

    /// The job-id part of a measure: `p`, `f`, `l` (`budget-p0.2-s42`).
    public static func slug(_ measure: String) -> String { String(measure.prefix(1)) }
    /// The methods with an integer rank per layer (as Compression's `Sensitivity.methods`).
    public static let allMethods = ["svd", "tucker2", "spatial-svd"]

    /// `budget:` with the top-level `methods:` and `candidates:` the issue's spelling allows; nil without `budget:`.
    static func parse(_ m: YAMLMap, latencyProfile: String?) throws -> BudgetSpec? {
        let topMethods = m.raw("methods"), topCandidates = m.raw("candidates")
        guard let b = try m.map("budget") else {
            if topMethods != nil { throw m.error("methods", "belongs to a budget: give budget: {params: 0.2} too") }
            if topCandidates != nil { throw m.error("candidates", "belongs to a budget: give budget: {params: 0.2} too") }
            return nil
        }
        var spec = BudgetSpec()
        let given = measures.filter { b.keys.contains($0) }
        guard given.count == 1 else {
            throw m.error("budget", given.isEmpty ? "needs one of params, flops or latency (a fraction of the baseline, or a list of them)"
                                                  : "gives \(given.joined(separator: " and ")): one measure per sweep")
        }
        spec.measure = given[0]
        spec.fractions = try b.axis(spec.measure, "a fraction in (0, 1]", { n in n.scalar == nil ? nil : n.float ?? n.int.map(Double.init) }) { v in
            v > 0 && v <= 1 ? nil : "must be a fraction of the baseline in (0, 1] (0.2 keeps 20%), got \(v)"
        } ?? []
        if b.keys.contains("methods") && topMethods != nil { throw m.error("methods", "is given twice (here and as budget.methods)") }
        if b.keys.contains("candidates") && topCandidates != nil { throw m.error("candidates", "is given twice (here and as budget.candidates)") }
        let (methodsMap, candidatesMap) = (b.keys.contains("methods") ? b : m, b.keys.contains("candidates") ? b : m)
        if let list = try methodsMap.sequence("methods") {
            var methods: [String] = []
            for n in list {
                guard let name = n.string, allMethods.contains(name) else {
                    throw methodsMap.error("methods", "lists \"\(n.string ?? "?")\": a budget allocates over \(allMethods.joined(separator: ", "))")
                }
                if !methods.contains(name) { methods.append(name) }
            }
            if methods.isEmpty { throw methodsMap.error("methods", "needs at least one method") }
            spec.methods = methods
        }
        if let c = try candidatesMap.int("candidates", min: 1) {
            if c > 32 { throw candidatesMap.error("candidates", "must be at most 32 ranks per layer, got \(c)") }
            spec.candidates = c
        }
        spec.latencyProfile = try b.string("latency_profile") ?? latencyProfile
        if spec.measure == "latency" && spec.latencyProfile == nil {
            throw b.error("latency", "needs a latency profile: budget.latency_profile (from `ranksweep profile-layers`)")
        }
        spec.sensitivityTable = try b.string("sensitivity_table")
        try b.finish()
        return spec
    }
}

/// The settings a sweep file may give as a list (nil: a single value, held by SweepSpec's scalar
/// field). The grid is the product of the lists; fine-tune axes share their baselines.
public struct SweepAxes: Sendable, Equatable {
    public var imageSize: [Int]?
    public var baseFilters: [Int]?
    public var depth: [Int]?
    public var learningRate: [Float]?
    public var epochs: [Int]?
    public var batchSize: [Int]?
    public var augment: [Bool]?
    public var fineTuneLearningRate: [Float]?
    public var fineTuneEpochs: [Int]?
    public init() {}

    /// The first axis given as a list of several values that only a trained baseline uses.
    var trainingOnlyAxis: String? {
        if (baseFilters?.count ?? 0) > 1 { return "model.base_filters" }
        if (depth?.count ?? 0) > 1 { return "model.depth" }
        if (learningRate?.count ?? 0) > 1 { return "baseline.lr" }
        if (epochs?.count ?? 0) > 1 { return "baseline.epochs" }
        if (augment?.count ?? 0) > 1 { return "baseline.augment" }
        return nil
    }
}

/// A YAML mapping being read: typed getters that name key and file in errors, and `finish()`
/// that rejects any key nobody asked for.
struct YAMLMap {
    let pairs: [(String, Node)]
    let path: String
    let file: String
    private let used = UsedKeys()

    final class UsedKeys { var set = Set<String>() }

    init(_ node: Node, path: String, file: String) throws {
        guard let mapping = node.mapping else {
            throw SweepError.invalid("\(file): \(path.isEmpty ? "the top level" : "\(path.dropLast())") must be a mapping of keys")
        }
        var pairs: [(String, Node)] = []
        for (k, v) in mapping {
            guard let key = k.string else { throw SweepError.invalid("\(file): non-string key under \(path)") }
            pairs.append((key, v))
        }
        self.pairs = pairs; self.path = path; self.file = file
    }

    var keys: Set<String> { Set(pairs.map(\.0)) }

    func error(_ key: String, _ what: String) -> SweepError {
        let line = pairs.first(where: { $0.0 == key })?.1.mark.map { " (line \($0.line))" } ?? ""
        return SweepError.invalid("\(file): \(path)\(key)\(line) \(what)")
    }

    func raw(_ key: String) -> Node? {
        used.set.insert(key)
        guard let n = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        if n.null != nil { return nil }
        return n
    }

    func string(_ key: String) throws -> String? {
        guard let n = raw(key) else { return nil }
        guard n.scalar != nil, let s = n.string, !s.isEmpty else { throw error(key, "must be a non-empty string") }
        return s
    }

    func int(_ key: String, min: Int? = nil) throws -> Int? {
        guard let n = raw(key) else { return nil }
        guard let v = n.int else { throw error(key, "must be an integer, got \"\(n.string ?? "?")\"") }
        if let min, v < min { throw error(key, "must be at least \(min), got \(v)") }
        return v
    }

    func double(_ key: String, positive: Bool) throws -> Double? {
        guard let n = raw(key) else { return nil }
        guard let v = n.float ?? n.int.map(Double.init), v.isFinite else { throw error(key, "must be a number, got \"\(n.string ?? "?")\"") }
        if positive ? v <= 0 : v < 0 { throw error(key, "must be \(positive ? "positive" : "zero or more"), got \(v)") }
        return v
    }

    func bool(_ key: String) throws -> Bool? {
        guard let n = raw(key) else { return nil }
        guard let v = n.bool else { throw error(key, "must be true or false, got \"\(n.string ?? "?")\"") }
        return v
    }

    func map(_ key: String) throws -> YAMLMap? {
        guard let n = raw(key) else { return nil }
        guard n.mapping != nil else { throw error(key, "must be a mapping") }
        return try YAMLMap(n, path: path + key + ".", file: file)
    }

    func sequence(_ key: String) throws -> [Node]? {
        guard let n = raw(key) else { return nil }
        guard let seq = n.sequence else { throw error(key, "must be a list") }
        return Array(seq)
    }

    func intList(_ key: String, min: Int?) throws -> [Int]? {
        guard let items = try sequence(key) else { return nil }
        return try items.map { n in
            guard let v = n.int else { throw error(key, "must be a list of integers, got \"\(n.string ?? "?")\"") }
            if let min, v < min { throw error(key, "values must be at least \(min), got \(v)") }
            return v
        }
    }

    /// A list of ranks as Tucker-2 and spatial SVD take them: positive integers, fractions in (0, 1)
    /// of the channels, or `auto` (VBMF). Returned as spelled canonically (`16`, `0.25`, `auto`).
    func rankList(_ key: String) throws -> [String]? {
        guard let items = try sequence(key) else { return nil }
        var out: [String] = []
        for n in items {
            let line = n.mark.map { " (line \($0.line))" } ?? ""
            let value: String
            if let v = n.int, v >= 1 { value = String(v) }
            else if let f = n.float, f > 0, f < 1 { value = String(f) }
            else if n.string?.lowercased() == "auto" { value = "auto" }
            else {
                throw SweepError.invalid("\(file): \(path)\(key)\(line) values must be positive integers, fractions in (0, 1) or auto, got \"\(n.string ?? "?")\"")
            }
            if out.contains(value) { throw SweepError.invalid("\(file): \(path)\(key)\(line) lists \(value) twice") }
            out.append(value)
        }
        return out
    }

    func doubleList(_ key: String, range: ClosedRange<Double>, excludingZero: Bool) throws -> [Double]? {
        guard let items = try sequence(key) else { return nil }
        return try items.map { n in
            guard let v = n.float ?? n.int.map(Double.init) else { throw error(key, "must be a list of numbers, got \"\(n.string ?? "?")\"") }
            if !range.contains(v) || (excludingZero && v == 0) {
                throw error(key, "values must be in \(excludingZero ? "(" : "[")\(range.lowerBound), \(range.upperBound)], got \(v)")
            }
            return v
        }
    }

    /// A key that takes one value or a list of them (a grid axis): nil when absent; a list must be
    /// non-empty and without repeats. Errors name the key and the line of the offending value.
    func axis<T: Equatable>(_ key: String, _ what: String, _ read: (Node) -> T?, check: (T) -> String? = { _ in nil }) throws -> [T]? {
        guard let n = raw(key) else { return nil }
        let items = n.sequence.map { Array($0) } ?? [n]
        if n.sequence != nil && items.isEmpty { throw error(key, "needs at least one value") }
        var out: [T] = []
        for item in items {
            let line = item.mark.map { " (line \($0.line))" } ?? ""
            guard let v = read(item) else {
                throw SweepError.invalid("\(file): \(path)\(key)\(line) must be \(what)\(n.sequence != nil ? " or a list of them" : ""), got \"\(item.string ?? "?")\"")
            }
            if let problem = check(v) { throw SweepError.invalid("\(file): \(path)\(key)\(line) \(problem)") }
            if out.contains(v) { throw SweepError.invalid("\(file): \(path)\(key)\(line) lists \(item.string ?? "a value") twice") }
            out.append(v)
        }
        return out
    }

    func intAxis(_ key: String, min: Int?) throws -> [Int]? {
        try axis(key, "an integer", { $0.scalar != nil ? $0.int : nil }) { v in
            if let min, v < min { return "must be at least \(min), got \(v)" }
            return nil
        }
    }

    /// A positive number (a learning rate), as the Float training runs.
    func floatAxis(_ key: String) throws -> [Float]? {
        try axis(key, "a number", { n in n.scalar == nil ? nil : (n.float ?? n.int.map(Double.init)).flatMap { $0.isFinite ? Float($0) : nil } }) { v in
            v > 0 && v.isFinite ? nil : "must be positive, got \(v)"
        }
    }

    func boolAxis(_ key: String) throws -> [Bool]? {
        try axis(key, "true or false", { $0.scalar != nil ? $0.bool : nil })
    }

    func finish() throws {
        for (k, node) in pairs where !used.set.contains(k) {
            let line = node.mark.map { " (line \($0.line))" } ?? ""
            let hint = Suggestion.closest(to: k, among: used.set).map { ": did you mean \(path)\($0)?" } ?? ""
            throw SweepError.invalid("\(file): unknown key \(path)\(k)\(line)\(hint)")
        }
    }
}

/// Parses "50,100,150" style flag values.
public enum ListFlag {
    public static func ints(_ text: String, flag: String) throws -> [Int] {
        try text.split(separator: ",").map {
            guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v > 0 else {
                throw SweepError.invalid("\(flag): \"\($0)\" is not a positive integer")
            }
            return v
        }
    }

    public static func doubles(_ text: String, flag: String) throws -> [Double] {
        try text.split(separator: ",").map {
            guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v > 0, v <= 1 else {
                throw SweepError.invalid("\(flag): \"\($0)\" is not a number in (0, 1]")
            }
            return v
        }
    }
}
