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

/// Turns a sweep spec into its job graph: one `train` per (model config, seed), one `compress`
/// per (baseline, method, rank/tau) depending on it; test jobs (`noop`, `sleep`, `jobs:`) have no deps.
public enum JobGraph {
    /// `importArtifact(path, isDirectory)` stores a file or a packed folder in the coordinator's
    /// artifact store and returns its address; planning calls it for the data root and baseline model.
    public static func plan(_ s: SweepSpec, importArtifact: (String, Bool) throws -> (hash: String, size: Int64)) throws -> [PlannedJob] {
        var jobs: [PlannedJob] = []
        if s.pipeline {
            var datasetInput: [PlannedInput] = []
            var data = DataSpec(synthetic: s.synthetic)
            if let root = s.dataRoot {
                guard Files.isDirectory(root) else { throw SweepError.invalid("data_root \(root) is not a directory") }
                datasetInput = [.artifact(JobFiles.dataset, try importArtifact(root, true), unpack: true)]
                data = DataSpec(datasetDir: JobFiles.dataset, datasetOptions: s.datasetOptions, origin: root)
            }
            var givenModel: PlannedInput?
            if let model = s.baselineModel {
                guard Files.exists(model), !Files.isDirectory(model) else { throw SweepError.invalid("baseline_model \(model) is not a file") }
                givenModel = .artifact(JobFiles.model, try importArtifact(model, false), unpack: false)
            }
            for seed in s.seeds {
                var baselineID = "given"
                var deps: [String] = []
                var modelInput: PlannedInput
                if let givenModel {
                    modelInput = givenModel
                } else {
                    baselineID = "train-s\(seed)"
                    var training = s.training
                    training.seed = UInt64(truncatingIfNeeded: seed)
                    let spec = TrainJobSpec(job: baselineID, seed: seed, imageSize: s.imageSize, model: s.model,
                                            training: training, data: data, validationSplit: s.validationSplit)
                    jobs.append(PlannedJob(id: baselineID, kind: "train", spec: try json(spec), deps: [], inputs: datasetInput))
                    deps = [baselineID]
                    modelInput = .output(JobFiles.model, of: baselineID, file: JobFiles.model)
                }
                func compress(_ id: String, _ method: String, rank: Int?, tau: Double?) throws {
                    let spec = CompressJobSpec(job: id, baselineJob: baselineID, method: method, rank: rank, tau: tau,
                                               fineTune: s.fineTune, seed: seed, imageSize: s.imageSize, model: s.model,
                                               data: data, batchSize: s.training.batchSize, validationSplit: s.validationSplit,
                                               baselineOrigin: s.baselineModel)
                    jobs.append(PlannedJob(id: id, kind: "compress", spec: try json(spec), deps: deps,
                                           inputs: datasetInput + [modelInput]))
                }
                for r in s.svdRanks { try compress("svd-r\(r)-s\(seed)", "svd", rank: r, tau: nil) }
                for t in s.arsvdTaus { try compress("arsvd-t\(t)-s\(seed)", "arsvd", rank: nil, tau: t) }
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
        return jobs
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
