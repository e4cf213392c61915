import Basics
import Foundation
import Sweep

/// The grid axes a sweep varies (the sweep file's lists), read back from the job specs, and the
/// baseline configurations the report groups rows by. An axis is "varied" when its jobs hold more
/// than one value of it, so an extended sweep shows the axes it has grown along.
public enum GridAxis: String, CaseIterable, Sendable {
    case imageSize = "image_size", baseFilters = "base_filters", depth, baselineLR = "baseline_lr", baselineEpochs = "baseline_epochs"
    case batchSize = "batch_size", augment, fineTuneLR = "fine_tune_lr", fineTuneEpochs = "fine_tune_epochs"

    /// Axes that make a baseline configuration (the fine-tune ones do not: they share baselines).
    public var isBaseline: Bool { self != .fineTuneLR && self != .fineTuneEpochs }

    /// This axis's value for one job, as text ("0.001", "16", "true"); nil when it does not apply.
    func value(_ job: JobRecord, _ results: SweepResults) -> String? {
        let train = job.trainSpec ?? results.baseline(of: job)?.trainSpec
        switch self {
        case .imageSize: return (job.trainSpec?.imageSize ?? job.compressSpec?.imageSize).map(String.init)
        case .baseFilters: return (job.trainSpec?.model ?? job.compressSpec?.model).map { String($0.baseFilters) }
        case .depth: return (job.trainSpec?.model ?? job.compressSpec?.model).map { String($0.depth) }
        case .baselineLR: return train.map { "\($0.training.learningRate)" }
        case .baselineEpochs: return train.map { String($0.training.epochs) }
        case .batchSize: return (job.trainSpec?.training.batchSize ?? job.compressSpec?.batchSize).map(String.init)
        case .augment: return train.map { String($0.training.augment) }
        case .fineTuneLR: return job.compressSpec.map { "\($0.fineTune.learningRate)" }
        case .fineTuneEpochs: return job.compressSpec.map { String($0.fineTune.epochs) }
        }
    }

    /// The axes whose jobs hold more than one value, in the order of `allCases`.
    public static func varied(_ results: SweepResults) -> [GridAxis] {
        let jobs = results.trainJobs + results.compressJobs
        return allCases.filter { axis in Set(jobs.compactMap { axis.value($0, results) }).count > 1 }
    }

    /// "base_filters=8, baseline_lr=0.001" for a row's baseline configuration; "" with no varied baseline axis.
    public static func groupLabel(_ axes: [String: String]) -> String {
        allCases.filter(\.isBaseline).compactMap { a in axes[a.rawValue].map { "\(a.rawValue)=\($0)" } }.joined(separator: ", ")
    }
}

/// The rows of one baseline configuration, and what its compression achieved.
public struct BaselineGroup: Sendable {
    /// `groupLabel` of its rows.
    public var label: String
    public var rows: [ResultRow]

    /// Mean baseline Dice over its seeds.
    public var baselineDice: Double? { Charts.baselineDice(rows) }

    /// The compress row with the largest parameter reduction that keeps `Recommendation.recoveryThreshold`.
    public var mostCompressiveKept: ResultRow? {
        rows.filter { $0.kind == "compress" && ($0.diceRecoveryPercent ?? 0) >= Recommendation.recoveryThreshold }
            .max { ($0.parameterReductionPercent ?? 0) < ($1.parameterReductionPercent ?? 0) }
    }

    /// Groups in the order their first row appears; one group when no baseline axis varies.
    public static func of(_ rows: [ResultRow]) -> [BaselineGroup] {
        var order: [String] = []
        var byLabel: [String: [ResultRow]] = [:]
        for r in rows {
            let label = GridAxis.groupLabel(r.axes)
            if byLabel[label] == nil { order.append(label) }
            byLabel[label, default: []].append(r)
        }
        return order.map { BaselineGroup(label: $0, rows: byLabel[$0]!) }
    }
}
