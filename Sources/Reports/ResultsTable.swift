import Basics
import Engine
import Foundation
import Pipeline

/// One row of `results.csv` / `results.json`: a job of the sweep, finished or not. Numbers are
/// nil when the job has not produced them (queued, running, failed) or they do not apply
/// (a baseline has no recovery).
public struct ResultRow: Codable, Sendable, Equatable {
    public var job: String
    /// `train` (the baseline) or `compress`.
    public var kind: String
    /// `baseline`, `svd`, `arsvd`, `tucker2` or `spatial-svd`.
    public var method: String
    public var rank: Int?
    /// Tucker-2 / spatial SVD: a rank that is not an integer (`auto`, `0.25`).
    public var rankText: String? = nil
    public var tau: Double?
    public var seed: Int?
    /// The value of each varied grid axis (`GridAxis` raw value -> value) for this job.
    public var axes: [String: String] = [:]
    /// `done`, `failed`, `running` or `queued`.
    public var status: String
    public var failureReason: String?
    public var parameters: Int?
    /// `100 * (baseline - compressed) / baseline`, total parameters.
    public var parameterReductionPercent: Double?
    /// Forward FLOPs per image at the sweep's image size.
    public var flops: Int?
    public var flopReductionPercent: Double?
    /// Median inference latency (ms per image); for the baseline, the median over its compress jobs' baseline timings.
    public var latencyMs: Double?
    /// The baseline's latency measured in the same run, interleaved.
    public var baselineLatencyMs: Double?
    /// Baseline latency / compressed latency (above 1: faster).
    public var speedUp: Double?
    /// Test-split scores right after factorisation ("before FT", the seed's column).
    public var diceBeforeFineTune: Double?
    public var iouBeforeFineTune: Double?
    /// After BatchNorm recalibration, still before fine-tuning.
    public var diceRecalibrated: Double?
    /// The job's final model: the candidate chosen on validation (factorised, recalibrated, a
    /// fine-tuning epoch; `chosen` says which), scored on the test split (the baseline's own test
    /// score on its row).
    public var diceAfterFineTune: Double?
    public var iouAfterFineTune: Double?
    /// Which candidate the job kept, and the best fine-tuning epoch's test Dice (epoch 0: its start).
    public var chosen: String?
    public var diceFineTuned: Double?
    /// Final Dice / baseline Dice x 100.
    public var diceRecoveryPercent: Double?
    public var iouRecoveryPercent: Double?
    /// Epochs run (training epochs on the baseline row) and their wall time in seconds.
    public var epochs: Int?
    public var trainingSeconds: Double?
    public var worker: String?
    public var host: String?
    public var attempts: Int
    /// Wall time of the accepted attempt on its worker, seconds.
    public var jobSeconds: Double?
    /// The model in the report folder (`models/JOB.safetensors`, relative to it) when the report keeps it.
    public var model: String?
    /// The model in the state dir's artifact store (absolute path), for every finished job.
    public var modelArtifact: String?
    /// A compress job's baseline (its train job, or the given model's name).
    public var baselineJob: String?

    /// A budget sweep's plan (`params 20%`, `params 20% r=12`), for the `budget` and `uniform-svd` rows.
    public var plan: String? = nil

    /// `r=4`, `tau=0.9`, or "" for the baseline.
    public var setting: String {
        if let plan { return plan }
        if let rank { return "r=\(rank)" }
        if let rankText { return "r=\(rankText)" }
        if let tau { return "tau=\(ResultsTable.number(tau))" }
        return ""
    }

    /// `SVD r=4`, `ARSVD tau=0.9`, `baseline`; with every varied grid axis after it, e.g.
    /// `SVD r=2 (base_filters=8, fine_tune_lr=0.0001)`, so no two different rows of a table or
    /// legend read the same.
    public var label: String {
        let name = method == "baseline" ? "baseline" : "\(method.uppercased()) \(setting)"
        let varied = GridAxis.allCases.compactMap { a in axes[a.rawValue].map { "\(a.rawValue)=\($0)" } }
        return varied.isEmpty ? name : name + " (" + varied.joined(separator: ", ") + ")"
    }
}

/// The sweep's jobs as rows, and their CSV.
public enum ResultsTable {
    public static func rows(_ results: SweepResults) -> [ResultRow] {
        let varied = GridAxis.varied(results)
        return givenBaselineRows(results) + results.jobs.compactMap { job in
            var row: ResultRow
            switch job.kind {
            case "train": row = baselineRow(job, results)
            case "compress": row = compressRow(job)
            default: return nil
            }
            for axis in varied { row.axes[axis.rawValue] = axis.value(job, results) }
            return row
        }
    }

    /// A sweep over a given baseline model (`baseline_model`) has no train job: its row is made
    /// from what the compress jobs measured of it (the same test split, per seed).
    static func givenBaselineRows(_ results: SweepResults) -> [ResultRow] {
        let given = results.compressJobs.filter { $0.compressResult != nil && results.baseline(of: $0) == nil }
        let bySeed = Dictionary(grouping: given, by: { $0.seed ?? 0 })
        return bySeed.keys.sorted().compactMap { seed in
            let jobs = bySeed[seed]!
            guard let first = jobs.first, let r = first.compressResult else { return nil }
            let id = first.compressSpec?.baselineJob ?? "given"
            var row = ResultRow(job: id, kind: "train", method: "baseline", seed: seed, status: "done", attempts: 0)
            row.parameters = r.summary.parametersBefore
            row.parameterReductionPercent = 0
            row.flops = r.summary.flopsBefore
            row.flopReductionPercent = 0
            row.latencyMs = median(jobs.compactMap { $0.compressResult?.latency.baseline.medianMsPerImage })
            row.baselineLatencyMs = row.latencyMs
            row.speedUp = 1
            row.diceAfterFineTune = r.baseline.dice
            row.iouAfterFineTune = r.baseline.iou
            return row
        }
    }

    static func common(_ job: JobRecord, method: String) -> ResultRow {
        ResultRow(job: job.id, kind: job.kind, method: method, rank: nil, tau: nil, seed: job.seed,
                  status: job.status.rawValue, failureReason: job.failureReason,
                  worker: job.worker, host: job.host, attempts: job.attempts, jobSeconds: job.seconds)
    }

    static func baselineRow(_ job: JobRecord, _ results: SweepResults) -> ResultRow {
        var row = common(job, method: "baseline")
        guard let r = job.trainResult else { return row }
        row.parameters = r.parameters
        row.parameterReductionPercent = 0
        row.flops = r.forwardFLOPsPerImage
        row.flopReductionPercent = 0
        let timings = results.compressJobs.filter { $0.compressSpec?.baselineJob == job.id }
            .compactMap { $0.compressResult?.latency.baseline.medianMsPerImage }
        row.latencyMs = median(timings)
        row.baselineLatencyMs = row.latencyMs
        row.speedUp = row.latencyMs == nil ? nil : 1
        row.diceAfterFineTune = r.test.dice
        row.iouAfterFineTune = r.test.iou
        row.epochs = r.epochsRun
        row.trainingSeconds = r.trainingSeconds
        return row
    }

    static func compressRow(_ job: JobRecord) -> ResultRow {
        var row = common(job, method: job.compressSpec?.method.lowercased() ?? "?")
        if job.compressSpec?.method == "allocated" {
            // A budget sweep's two models per budget: the allocation and uniform SVD at the same budget.
            row.method = job.id.hasPrefix("uniform-svd-") ? "uniform-svd" : "budget"
            row.plan = job.compressResult?.method.setting ?? job.compressSpec?.plan
        }
        row.baselineJob = job.compressSpec?.baselineJob
        row.rank = job.compressSpec?.rank
        row.rankText = job.compressSpec?.rankText
        row.tau = job.compressSpec?.tau
        guard let r = job.compressResult else { return row }
        row.parameters = r.summary.parametersAfter
        row.parameterReductionPercent = r.summary.parameterReductionPercent
        row.flops = r.summary.flopsAfter
        row.flopReductionPercent = r.summary.flopReductionPercent
        row.latencyMs = r.latency.compressed.medianMsPerImage
        row.baselineLatencyMs = r.latency.baseline.medianMsPerImage
        row.speedUp = r.latency.speedUp
        row.diceBeforeFineTune = r.afterFactorisation.dice
        row.iouBeforeFineTune = r.afterFactorisation.iou
        row.diceRecalibrated = r.afterRecalibration.dice
        row.diceAfterFineTune = r.chosenScore.dice
        row.iouAfterFineTune = r.chosenScore.iou
        row.chosen = r.chosen
        row.diceFineTuned = r.afterFineTune.dice
        row.diceRecoveryPercent = r.diceRecoveryPercent
        row.iouRecoveryPercent = r.iouRecoveryPercent
        row.epochs = r.fineTuneEpochs
        row.trainingSeconds = r.fineTuneSeconds
        return row
    }

    public static let csvColumns = [
        "job", "kind", "method", "rank", "tau", "seed", "status", "parameters", "parameter_reduction_percent",
        "flops", "flop_reduction_percent", "latency_ms", "baseline_latency_ms", "speed_up",
        "dice_before_ft", "iou_before_ft", "dice_recalibrated", "dice_fine_tuned", "chosen", "dice_final", "iou_final",
        "dice_recovery_percent", "iou_recovery_percent", "epochs", "training_seconds",
        "worker", "host", "attempts", "job_seconds", "failure_reason", "model", "model_artifact",
    ]

    /// RFC 4180 CSV, one row per job; numbers in Swift's shortest round-trip form (the stored
    /// values exactly), empty cells where a value is missing.
    /// One column per varied grid axis follows `seed` (none when the sweep varies only ranks, taus and seeds).
    public static func csv(_ rows: [ResultRow]) -> String {
        let axes = GridAxis.allCases.map(\.rawValue).filter { a in rows.contains { $0.axes[a] != nil } }
        let seedColumn = csvColumns.firstIndex(of: "seed")! + 1
        var header = csvColumns
        header.insert(contentsOf: axes, at: seedColumn)
        var table = CSVTable(header: header)
        for r in rows {
            var cells: [String?] = [
                r.job, r.kind, r.method, r.rank.map(String.init) ?? r.rankText, r.tau.map(number), r.seed.map(String.init), r.status,
                r.parameters.map(String.init), r.parameterReductionPercent.map(number), r.flops.map(String.init),
                r.flopReductionPercent.map(number), r.latencyMs.map(number), r.baselineLatencyMs.map(number),
                r.speedUp.map(number), r.diceBeforeFineTune.map(number), r.iouBeforeFineTune.map(number),
                r.diceRecalibrated.map(number), r.diceFineTuned.map(number), r.chosen, r.diceAfterFineTune.map(number), r.iouAfterFineTune.map(number),
                r.diceRecoveryPercent.map(number), r.iouRecoveryPercent.map(number), r.epochs.map(String.init),
                r.trainingSeconds.map(number), r.worker, r.host, String(r.attempts), r.jobSeconds.map(number), r.failureReason,
                r.model, r.modelArtifact,
            ]
            cells.insert(contentsOf: axes.map { r.axes[$0] }, at: seedColumn)
            table.append(cells.map { $0 ?? "" })
        }
        return table.text
    }

    /// Shortest text that reads back as the same Double; `nan`, `inf`, `-inf` for the others.
    static func number(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return "\(x)"
    }

    /// The median of the finite values (Engine's), nil when there are none.
    static func median(_ xs: [Double]) -> Double? {
        let finite = xs.filter { $0.isFinite }
        return finite.isEmpty ? nil : Engine.median(finite)
    }
}
