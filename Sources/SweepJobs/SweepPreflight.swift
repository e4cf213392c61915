import Compression
import Engine
import Foundation
import Pipeline
import Sweep

/// A sweep's inputs checked before any state is written or any job is planned: every dataset file
/// decodes (as `dataset check` does), the baseline model loads and fits the data. The errors are
/// the same one-line errors `train` and `compress` give, naming the user's own files; a sweep that
/// would fail in every job never starts. Also settles the model's input channels from the data
/// when the sweep file does not give them (gray when every image is gray).
public enum SweepPreflight {
    public static func check(_ spec: inout SweepSpec) throws {
        try checkImageSizes(spec)
        // Only what train and compress jobs will decode: a sweep of test jobs may ship any files.
        let trains = spec.baselineModel == nil, compresses = !spec.svdRanks.isEmpty || !spec.arsvdTaus.isEmpty || spec.target != nil || spec.budget != nil
        guard spec.pipeline, trains || compresses else { return }
        // The folder as the jobs will read it: the sweep file's dataset options included.
        let options = spec.datasetOptions
        let data = spec.dataRoot.map { root -> DataSource in
            var source = DataSource(root: root)
            source.datasetOptions = options
            return source
        }
        if let data, !spec.channelsGiven { spec.model.channels = try data.storedChannels() }
        if let path = spec.latencyProfile, compresses {
            // A profile that cannot be read, or was made for another model, would fail every compress job.
            let profile = try LatencyProfile.read(path: path)
            if spec.baselineModel == nil {
                let shape = UNet(config: UNetConfig(inputChannels: spec.model.channels, baseFilters: spec.model.baseFilters, depth: spec.model.depth), seed: 0)
                try profile.check(fits: shape, imageSize: spec.imageSize)
            }
        }
        if let budget = spec.budget { try checkBudget(budget, baselineModel: spec.baselineModel) }
        if let path = spec.baselineModel {
            // Compress jobs score the model at the size and on the channels it was trained with.
            let (model, _, training) = try CompressJob.loadBaseline(path: path, data: data ?? DataSource())   // a Keras baseline takes the sweep's data
            if let data {
                _ = try data.load(imageSize: training.imageSize, channels: model.config.inputChannels)
            }
        } else if let data {
            _ = try data.load(imageSize: spec.imageSize, channels: spec.model.channels)
        }
    }

    /// A budget's profile reads, and a reused sensitivity table reads, holds the budget's methods and
    /// (for a given baseline) was measured on that very file.
    static func checkBudget(_ budget: BudgetSpec, baselineModel: String?) throws {
        if let path = budget.latencyProfile { _ = try LatencyProfile.read(path: path) }
        guard let path = budget.sensitivityTable else { return }
        let table = try OutputFiles.readJSON(SensitivityTable.self, from: path)
        let missing = budget.methods.filter { !table.methods.contains($0) }
        if !missing.isEmpty {
            throw SweepError.invalid("budget.sensitivity_table \(path) has no measurements for \(missing.joined(separator: ", ")) (it holds \(table.methods.joined(separator: ", ")))")
        }
        if let model = baselineModel, try SHA256Hasher.file(model).hash != table.baselineSHA256 {
            throw SweepError.invalid("budget.sensitivity_table \(path) was measured on another baseline than \(model)")
        }
    }

    /// Every image size of the sweep against every depth, as `train` checks one pair: a size the
    /// U-Net cannot pool is refused before any job runs (not failed max_attempts times per job).
    static func checkImageSizes(_ spec: SweepSpec) throws {
        guard spec.pipeline, spec.baselineModel == nil else { return }
        for size in spec.axes.imageSize ?? [spec.imageSize] {
            for depth in spec.axes.depth ?? [spec.model.depth] where size < 16 || size % (1 << depth) != 0 {
                throw SweepError.invalid("image_size \(size) must be at least 16 and a multiple of 2^depth = \(1 << depth) (depth \(depth))")
            }
        }
    }
}
