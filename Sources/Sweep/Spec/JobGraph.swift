import Basics
import Foundation

/// One job of the sweep as planned (and stored): what to run, what it needs first, what inputs it gets.
public struct PlannedJob: Codable, Sendable, Equatable {
    public var id: String
    /// `train`, `compress`, `noop`, `sleep`, or any `exec-job` kind.
    public var kind: String
    /// Job spec JSON (TrainJobSpec, CompressJobSpec, or the kind's own).
    public var spec: String
    /// Jobs that must be done before this one is dispatched.
    public var deps: [String]
    public var inputs: [PlannedInput]
}

/// An input: either a fixed artifact (dataset, given baseline model) or a file produced by a dependency.
public struct PlannedInput: Codable, Sendable, Equatable {
    public var name: String
    public var hash: String?
    public var size: Int64?
    public var unpack: Bool
    /// Produced by this job (one of `deps`), output file `file`.
    public var fromJob: String?
    public var file: String?

    public static func artifact(_ name: String, _ ref: (hash: String, size: Int64), unpack: Bool) -> PlannedInput {
        PlannedInput(name: name, hash: ref.hash, size: ref.size, unpack: unpack, fromJob: nil, file: nil)
    }

    public static func output(_ name: String, of job: String, file: String) -> PlannedInput {
        PlannedInput(name: name, hash: nil, size: nil, unpack: false, fromJob: job, file: file)
    }
}

/// Turns a sweep spec into its job graph: one `train` per (baseline configuration, seed), one
/// `compress` per (baseline, fine-tune configuration, method, rank/tau) depending on it; test jobs (`noop`, `sleep`, `jobs:`) have no deps.
public enum JobGraph {
    /// `importArtifact(path, isDirectory)` stores a file or a packed folder in the coordinator's
    /// artifact store and returns its address; planning calls it for the data root and baseline model.
    public static func plan(_ s: SweepSpec, importArtifact: (String, Bool) throws -> (hash: String, size: Int64)) throws -> [PlannedJob] {
        try planWithSearches(s, importArtifact: importArtifact).jobs
    }

    /// The jobs, and the targeted searches (`target:`) whose compress jobs the coordinator creates as results arrive.
    public static func planWithSearches(_ s: SweepSpec, importArtifact: (String, Bool) throws -> (hash: String, size: Int64)) throws
        -> (jobs: [PlannedJob], searches: [SearchDefinition]) {
        var jobs: [PlannedJob] = []
        var searches: [SearchDefinition] = []
        if s.pipeline {
            var datasetInput: [PlannedInput] = []
            var data = DataSpec(synthetic: s.synthetic)
            if let root = s.dataRoot {
                guard Files.isDirectory(root) else { throw SweepError.invalid("data_root \(root) is not a directory") }
                datasetInput = [.artifact(JobFiles.dataset, try importArtifact(root, true), unpack: true)]
                data = DataSpec(datasetDir: JobFiles.dataset, datasetOptions: s.datasetOptions, origin: root)
            }
            var profileInput: [PlannedInput] = []
            if let profile = s.latencyProfile {
                guard Files.exists(profile), !Files.isDirectory(profile) else { throw SweepError.invalid("compression.latency_profile \(profile) is not a file") }
                profileInput = [.artifact(JobFiles.latencyProfile, try importArtifact(profile, false), unpack: false)]
            }
            var givenModel: PlannedInput?
            if let model = s.baselineModel {
                guard Files.exists(model), !Files.isDirectory(model) else { throw SweepError.invalid("baseline_model \(model) is not a file") }
                givenModel = .artifact(JobFiles.model, try importArtifact(model, false), unpack: false)
            }
            for config in GridPoint.all(s) {
                for seed in s.seeds {
                    var baselineID = "given"
                    var deps: [String] = []
                    var modelInput: PlannedInput
                    if let givenModel {
                        modelInput = givenModel
                    } else {
                        baselineID = (["train"] + config.baselineTags + ["s\(seed)"]).joined(separator: "-")
                        var training = config.training
                        training.seed = UInt64(truncatingIfNeeded: seed)
                        let spec = TrainJobSpec(job: baselineID, seed: seed, imageSize: config.imageSize, model: config.model,
                                                training: training, data: data, validationSplit: s.validationSplit)
                        jobs.append(PlannedJob(id: baselineID, kind: "train", spec: try json(spec), deps: [], inputs: datasetInput))
                        deps = [baselineID]
                        modelInput = .output(JobFiles.model, of: baselineID, file: JobFiles.model)
                    }
                    let budgetPlans = try budgetJobs(s, config: config, seed: seed, baselineID: baselineID, deps: deps, data: data,
                                                     datasetInput: datasetInput, modelInput: modelInput, importArtifact: importArtifact, into: &jobs)
                    for fineTune in config.fineTunes {
                        for (allocation, fraction) in budgetPlans {
                            let suffix = (config.baselineTags + fineTune.tags + ["s\(seed)"]).joined(separator: "-")
                            let measure = s.budget!.measure
                            for (prefix, file) in [("budget", JobFiles.allocationPlan), ("uniform-svd", JobFiles.uniformSVDPlan)] {
                                let id = "\(prefix)-\(BudgetSpec.slug(measure))\(fraction)-\(suffix)"
                                var spec = CompressJobSpec(job: id, baselineJob: baselineID, method: "allocated", rank: nil, tau: nil,
                                                           fineTune: fineTune.settings, seed: seed, imageSize: config.imageSize, model: config.model,
                                                           data: data, batchSize: config.training.batchSize, validationSplit: s.validationSplit,
                                                           baselineOrigin: s.baselineModel)
                                spec.plan = String(format: "%@ %g%%", measure, 100 * fraction)
                                jobs.append(PlannedJob(id: id, kind: "compress", spec: try json(spec), deps: deps + [allocation],
                                                       inputs: datasetInput + [modelInput, .output(JobFiles.plan, of: allocation, file: file)]))
                            }
                        }
                        func compress(_ method: String, rank: Int?, tau: Double?, rankText: String? = nil) throws {
                            let setting = rank.map { "r\($0)" } ?? rankText.map { "r\($0)" } ?? tau.map { "t\($0)" } ?? ""
                            let id = ([method, setting] + config.baselineTags + fineTune.tags + ["s\(seed)"]).joined(separator: "-")
                            var spec = CompressJobSpec(job: id, baselineJob: baselineID, method: method, rank: rank, tau: tau,
                                                       fineTune: fineTune.settings, seed: seed, imageSize: config.imageSize, model: config.model,
                                                       data: data, batchSize: config.training.batchSize, validationSplit: s.validationSplit,
                                                       baselineOrigin: s.baselineModel, latencyProfile: s.latencyProfile)
                            spec.rankText = rankText
                            jobs.append(PlannedJob(id: id, kind: "compress", spec: try json(spec), deps: deps,
                                                   inputs: datasetInput + [modelInput] + profileInput))
                        }
                        for r in s.svdRanks { try compress("svd", rank: r, tau: nil) }
                        for t in s.arsvdTaus { try compress("arsvd", rank: nil, tau: t) }
                        for (method, ranks, taus) in [("tucker2", s.tucker2Ranks, s.tucker2Taus), ("spatial-svd", s.spatialSVDRanks, s.spatialSVDTaus)] {
                            for r in ranks {
                                if let integer = Int(r) { try compress(method, rank: integer, tau: nil) } else { try compress(method, rank: nil, tau: nil, rankText: r) }
                            }
                            for t in taus { try compress(method, rank: nil, tau: t) }
                        }
                        for method in s.target?.methods ?? [] {
                            let suffix = (config.baselineTags + fineTune.tags + ["s\(seed)"]).joined(separator: "-")
                            let template = CompressJobSpec(job: "", baselineJob: baselineID, method: method, rank: nil, tau: nil,
                                                           fineTune: fineTune.settings, seed: seed, imageSize: config.imageSize, model: config.model,
                                                           data: data, batchSize: config.training.batchSize, validationSplit: s.validationSplit,
                                                           baselineOrigin: s.baselineModel, latencyProfile: s.latencyProfile)
                            searches.append(SearchDefinition(name: "\(method)-\(suffix)", method: method, idSuffix: suffix,
                                                             candidates: s.target!.candidates(method: method, model: config.model),
                                                             target: s.target!.recovery, maxJobs: s.target!.maxJobs, maxAttempts: s.maxAttempts, template: template,
                                                             deps: deps, inputs: datasetInput + [modelInput] + profileInput))
                        }
                    }
                }
            }
        }
        let width = max(1, String(s.noop).count)
        for i in 0 ..< s.noop {
            let n = String(i + 1)
            jobs.append(PlannedJob(id: "noop-" + String(repeating: "0", count: width - n.count) + n, kind: "noop", spec: "{}", deps: [], inputs: []))
        }
        if let sl = s.sleep {
            var inputs: [PlannedInput] = []
            if sl.withDataset {
                guard let root = s.dataRoot else { throw SweepError.invalid("sleep.with_dataset needs data_root") }
                inputs = [.artifact(JobFiles.dataset, try importArtifact(root, true), unpack: true)]
            }
            let spec = try json(SleepSpec(seconds: sl.seconds, inChild: sl.inChild, produceBytes: sl.produceBytes))
            for i in 0 ..< sl.count {
                jobs.append(PlannedJob(id: "sleep-\(i + 1)", kind: "sleep", spec: spec, deps: [], inputs: inputs))
            }
        }
        for extra in s.extraJobs {
            for i in 0 ..< extra.count {
                jobs.append(PlannedJob(id: "\(extra.kind)-\(i + 1)", kind: extra.kind, spec: extra.spec, deps: [], inputs: []))
            }
        }
        var seen = Set<String>()
        for j in jobs where !seen.insert(j.id).inserted { throw SweepError.invalid("two jobs are named \(j.id) (duplicate seeds or ranks?)") }
        return (jobs, searches)
    }

    /// A budget's sensitivity jobs (one per method and layer slot, unless a table is reused) and its
    /// allocation jobs (one per budget fraction) for one baseline; returns each allocation job's id
    /// with its fraction, for the compress jobs that take its plans.
    static func budgetJobs(_ s: SweepSpec, config: GridPoint, seed: Int, baselineID: String, deps: [String], data: DataSpec,
                           datasetInput: [PlannedInput], modelInput: PlannedInput,
                           importArtifact: (String, Bool) throws -> (hash: String, size: Int64), into jobs: inout [PlannedJob]) throws -> [(String, Double)] {
        guard let budget = s.budget else { return [] }
        let suffix = (config.baselineTags + ["s\(seed)"]).joined(separator: "-")
        var profileInput: [PlannedInput] = []
        if let profile = budget.latencyProfile {
            guard Files.exists(profile), !Files.isDirectory(profile) else { throw SweepError.invalid("budget.latency_profile \(profile) is not a file") }
            profileInput = [.artifact(JobFiles.latencyProfile, try importArtifact(profile, false), unpack: false)]
        }
        var pieces: [PlannedInput] = []
        var sensitivityIDs: [String] = []
        if let table = budget.sensitivityTable {
            guard Files.exists(table), !Files.isDirectory(table) else { throw SweepError.invalid("budget.sensitivity_table \(table) is not a file") }
            pieces = [.artifact(JobFiles.reusedSensitivityTable, try importArtifact(table, false), unpack: false)]
        } else {
            // One job per (method, layer): the slots of a depth-d U-Net are its 4d + 2 convolutions before the head.
            let slots = 4 * config.model.depth + 2
            let width = String(slots - 1).count
            for method in budget.methods {
                for slot in 0 ..< slots {
                    let n = String(slot)
                    let id = "sens-\(method)-l\(String(repeating: "0", count: width - n.count) + n)-\(suffix)"
                    let spec = SensitivityJobSpec(job: id, baselineJob: baselineID, method: method, slots: [slot], candidates: budget.candidates,
                                                  seed: seed, imageSize: config.imageSize, model: config.model, data: data,
                                                  batchSize: config.training.batchSize, validationSplit: s.validationSplit,
                                                  baselineOrigin: s.baselineModel, latencyProfile: budget.latencyProfile)
                    jobs.append(PlannedJob(id: id, kind: "sensitivity", spec: try json(spec), deps: deps,
                                           inputs: datasetInput + [modelInput] + profileInput))
                    sensitivityIDs.append(id)
                    pieces.append(.output(JobFiles.sensitivityPiece(id), of: id, file: JobFiles.sensitivityTable))
                }
            }
        }
        var out: [(String, Double)] = []
        for fraction in budget.fractions {
            let id = "allocate-\(BudgetSpec.slug(budget.measure))\(fraction)-\(suffix)"
            let spec = AllocationJobSpec(job: id, baselineJob: baselineID, measure: budget.measure, fraction: fraction, methods: budget.methods,
                                         pieces: pieces.map(\.name), reusedTable: budget.sensitivityTable, baselineOrigin: s.baselineModel,
                                         latencyProfile: budget.latencyProfile)
            jobs.append(PlannedJob(id: id, kind: "allocate", spec: try json(spec), deps: deps + sensitivityIDs,
                                   inputs: [modelInput] + pieces + profileInput))
            out.append((id, fraction))
        }
        return out
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }
}

/// Spec of a `sleep` job (tests and benchmarks).
public struct SleepSpec: Codable, Sendable, Equatable {
    public var seconds: Double
    /// Run through a child `exec-job` process rather than a worker thread.
    public var inChild: Bool
    /// Child path only: write `out.bin` with this many deterministic bytes (an artifact to upload).
    public var produceBytes: Int
    public init(seconds: Double, inChild: Bool = false, produceBytes: Int = 0) {
        self.seconds = seconds; self.inChild = inChild; self.produceBytes = produceBytes
    }
}

/// One baseline configuration of the grid (a point of the product of the baseline, model and
/// image-size axes) with the fine-tune configurations its compress jobs take. Its tags name the
/// values of the axes the file gave as lists of several values, so a single-valued sweep keeps
/// the ids it always had (`train-s42`, `svd-r50-s42`).
struct GridPoint {
    var imageSize: Int
    var model: ModelSpec
    var training: TrainingSettings
    var baselineTags: [String]
    var fineTunes: [(settings: FineTuneSettings, tags: [String])]

    static func all(_ s: SweepSpec) -> [GridPoint] {
        let a = s.axes
        func values<T>(_ list: [T]?, _ scalar: T) -> [T] { list ?? [scalar] }
        func tag<T>(_ list: [T]?, _ prefix: String, _ v: T) -> [String] { (list?.count ?? 0) > 1 ? [prefix + "\(v)"] : [] }
        var fineTunes: [(settings: FineTuneSettings, tags: [String])] = []
        for lr in values(a.fineTuneLearningRate, s.fineTune.learningRate) {
            for ep in values(a.fineTuneEpochs, s.fineTune.epochs) {
                var f = s.fineTune
                f.learningRate = lr; f.epochs = ep
                fineTunes.append((f, tag(a.fineTuneLearningRate, "ftlr", lr) + tag(a.fineTuneEpochs, "ftep", ep)))
            }
        }
        var out: [GridPoint] = []
        for size in values(a.imageSize, s.imageSize) {
            for bf in values(a.baseFilters, s.model.baseFilters) {
                for depth in values(a.depth, s.model.depth) {
                    for lr in values(a.learningRate, s.training.learningRate) {
                        for ep in values(a.epochs, s.training.epochs) {
                            for bs in values(a.batchSize, s.training.batchSize) {
                                for aug in values(a.augment, s.training.augment) {
                                    var model = s.model
                                    model.baseFilters = bf; model.depth = depth
                                    var t = s.training
                                    t.learningRate = lr; t.epochs = ep; t.batchSize = bs; t.augment = aug
                                    let tags = tag(a.imageSize, "is", size) + tag(a.baseFilters, "bf", bf) + tag(a.depth, "d", depth)
                                        + tag(a.learningRate, "lr", lr) + tag(a.epochs, "ep", ep) + tag(a.batchSize, "bs", bs)
                                        + ((a.augment?.count ?? 0) > 1 ? [aug ? "aug" : "noaug"] : [])
                                    out.append(GridPoint(imageSize: size, model: model, training: t, baselineTags: tags, fineTunes: fineTunes))
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// One targeted search as planned: a method on one baseline (and fine-tune configuration), the
/// settings it may probe, and how to make the compress job of a probe. Stored in the state dir's
/// meta (`target_searches`), so a resumed coordinator and the report know the searches without
/// the sweep file.
public struct SearchDefinition: Codable, Sendable, Equatable {
    /// `svd-s1`: the method and the ids' suffix.
    public var name: String
    public var method: String
    /// The end of every probe's id after its setting (`s1`, `lr0.001-s1`).
    public var idSuffix: String
    /// Most compressive first.
    public var candidates: [Double]
    /// Required recovery, a fraction.
    public var target: Double
    public var maxJobs: Int
    /// The sweep's `max_attempts`, for each probe.
    public var maxAttempts: Int
    /// The probes' spec with `job`, `rank` and `tau` to fill in.
    public var template: CompressJobSpec
    public var deps: [String]
    public var inputs: [PlannedInput]

    /// The job id of the probe at `index` (the id a grid job of the same setting has).
    public func jobID(_ index: Int) -> String {
        let c = candidates[index]
        let setting = TargetSpec.searchesRanks(method) ? "r\(Int(c))" : "t\(c)"
        return "\(method)-\(setting)-\(idSuffix)"
    }

    /// The compress job that probes candidate `index`.
    public func job(_ index: Int) throws -> PlannedJob {
        var spec = template
        spec.job = jobID(index)
        if TargetSpec.searchesRanks(method) { spec.rank = Int(candidates[index]) } else { spec.tau = candidates[index] }
        return PlannedJob(id: spec.job, kind: "compress", spec: try JobGraph.json(spec), deps: deps, inputs: inputs)
    }

    /// The index a probe's job id stands for, if it is one of this search's.
    public func index(ofJob id: String) -> Int? {
        guard id.hasSuffix("-" + idSuffix), id.hasPrefix(method + "-") else { return nil }
        return candidates.indices.first { jobID($0) == id }
    }

    public var search: TargetSearch { TargetSearch(candidates: candidates, target: target, maxJobs: maxJobs) }
}
