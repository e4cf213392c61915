import Basics
import Foundation

/// Settings given on the command line that replace a sweep file's (`ranksweep run --epochs 5 …`).
/// A flag fixes its setting for the whole sweep, so it also drops that setting's axis.
public struct SweepOverrides: Sendable, Equatable {
    public var svdRanks: [Int]?
    public var arsvdTaus: [Double]?
    public var epochs: Int?
    public var batchSize: Int?
    /// An absolute path: the sweep then uses this folder instead of its synthetic set.
    public var dataRoot: String?
    public var datasetOptions: DatasetOptions?
    /// An absolute path to an existing baseline (skips training).
    public var baselineModel: String?
    /// Baselines only: no compression jobs.
    public var trainOnly = false
    public var seeds: [Int]?
    public var imageSize: Int?
    public var baseFilters: Int?
    public var depth: Int?
    public var learningRate: Float?
    public var jobTimeout: Double?

    public init() {}

    /// What is wrong with the values given (nil: nothing), naming the flag. `--job-timeout` is
    /// checked where the flag is declared, for `coordinator` too (CoordinatorRunOptions).
    public var problem: String? {
        if let e = epochs, e < 1 { return "--epochs must be at least 1" }
        if let b = batchSize, b < 1 { return "--batch-size must be at least 1" }
        if trainOnly && baselineModel != nil { return "--train-only trains baselines; --model gives one and skips training" }
        if let v = imageSize, v < 8 || v > 4096 { return "--image-size must be in 8...4096" }
        if let v = baseFilters, v < 1 || v > 1024 { return "--base-filters must be in 1...1024" }
        if let v = depth, v < 1 || v > 8 { return "--depth must be in 1...8" }
        if let v = learningRate, !(v > 0 && v.isFinite) { return "--lr must be a positive number" }
        return nil
    }

    /// The flag of the first override that changes which jobs a sweep has (nil: none does), for
    /// refusing them when resuming a stored sweep. `--job-timeout` does not: it only governs attempts.
    public var firstSweepChangingFlag: String? {
        let given: [(Bool, String)] = [
            (svdRanks != nil, "--svd-ranks"), (arsvdTaus != nil, "--arsvd-taus"), (epochs != nil, "--epochs"),
            (batchSize != nil, "--batch-size"), (dataRoot != nil, "--data-root"), (datasetOptions != nil, "the dataset layout flags"),
            (baselineModel != nil, "--model"), (trainOnly, "--train-only"), (seeds != nil, "--seeds"), (imageSize != nil, "--image-size"),
            (baseFilters != nil, "--base-filters"), (depth != nil, "--depth"), (learningRate != nil, "--lr"),
        ]
        return given.first(where: { $0.0 })?.1
    }
}

extension SweepSpec {
    /// This sweep with `overrides` in place of its own settings.
    public func applying(_ overrides: SweepOverrides) -> SweepSpec {
        var s = self
        if let r = overrides.svdRanks { s.svdRanks = r }
        if let t = overrides.arsvdTaus { s.arsvdTaus = t }
        if let e = overrides.epochs { s.training.epochs = e; s.axes.epochs = nil }
        if let b = overrides.batchSize { s.training.batchSize = b; s.axes.batchSize = nil }
        if let d = overrides.dataRoot { s.dataRoot = d; s.synthetic = nil }
        if let o = overrides.datasetOptions { s.datasetOptions = o }
        if let m = overrides.baselineModel { s.baselineModel = m }
        if overrides.trainOnly { s.svdRanks = []; s.arsvdTaus = [] }
        if let v = overrides.seeds { s.seeds = v }
        if let v = overrides.imageSize { s.imageSize = v; s.axes.imageSize = nil }
        if let v = overrides.baseFilters { s.model.baseFilters = v; s.axes.baseFilters = nil }
        if let v = overrides.depth { s.model.depth = v; s.axes.depth = nil }
        if let v = overrides.learningRate { s.training.learningRate = v; s.axes.learningRate = nil }
        if let t = overrides.jobTimeout { s.jobTimeout = t }
        return s
    }
}
