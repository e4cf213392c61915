import Basics
import Compression
import Engine
import Foundation
import ModelInterop

/// One sensitivity job: some layers of a baseline, one method, each layer factorised alone at each
/// candidate rank and scored on the validation split, with no fine-tuning.
public struct SensitivitySpec: Codable, Sendable, Equatable {
    /// `svd`, `tucker2` or `spatial-svd`.
    public var method: String
    /// Indices into the model's convolutions (forward order).
    public var slots: [Int]
    /// Ranks tried per layer.
    public var candidates: Int
    /// Data to score on; nil = the baseline's own data and split.
    public var data: DataSource?
    public var batchSize: Int?
    /// A `LatencyProfile` file: its times are recorded per option (for a latency budget).
    public var latencyProfile: String?

    public init(method: String, slots: [Int], candidates: Int, data: DataSource? = nil, batchSize: Int? = nil, latencyProfile: String? = nil) {
        self.method = method; self.slots = slots; self.candidates = candidates; self.data = data
        self.batchSize = batchSize; self.latencyProfile = latencyProfile
    }
}

/// One allocation job: the sensitivity table (its pieces) turned into a plan per budget.
public struct AllocationSpec: Codable, Sendable, Equatable {
    public var measure: BudgetMeasure
    /// The budget, a fraction of the baseline.
    public var fraction: Double
    /// The methods to allocate over (a reused table may hold more).
    public var methods: [String]
    public var latencyProfile: String?

    public init(measure: BudgetMeasure, fraction: Double, methods: [String], latencyProfile: String? = nil) {
        self.measure = measure; self.fraction = fraction; self.methods = methods; self.latencyProfile = latencyProfile
    }
}

/// `result.json` of an allocation job: the answer, what the plan really costs, and the uniform-SVD
/// model at the same budget it is compared with.
public struct AllocationResult: Codable, Sendable, Equatable {
    public var answer: BudgetAnswer
    /// The plan applied to the baseline: its parameters and FLOPs (exact, not predicted).
    public var parameters: Int
    public var flops: Int
    public var parameterReductionPercent: Double
    public var flopReductionPercent: Double
    /// The uniform SVD rank at the same budget (nil: not even rank 1 fits) and its cost's fraction.
    public var uniformSVDRank: Int?
    public var uniformSVDFraction: Double?
    /// How many layers and options the table held, and whether it came from an earlier sweep.
    public var tableLayers: Int
    public var tableOptions: Int
    public var reusedTable: Bool
}

public enum BudgetJobs {
    public static let tableFile = "sensitivity.json"
    public static let planFile = "allocation.json"
    public static let uniformPlanFile = "uniform-svd.json"

    /// Measures the layers of `spec` and writes its piece of the table (`sensitivity.json`).
    /// `baselineSHA256` identifies the baseline file (a table is reused only for it).
    public static func sensitivity(_ spec: SensitivitySpec, baselinePath: String, baselineSHA256: String, outDir: String,
                                   events: @escaping (TrainingEvent) -> Void = { _ in }) throws -> SensitivityTable {
        guard spec.candidates >= 1 else { throw CompressionError("sensitivity needs at least one candidate rank per layer") }
        let profile = try spec.latencyProfile.map { path throws(CompressionError) in try LatencyProfile.read(path: path) }
        let (baseline, _, trainSpec) = try CompressJob.loadBaseline(path: baselinePath, data: spec.data)
        let source = spec.data ?? trainSpec.data
        let data = try source.load(imageSize: trainSpec.imageSize, channels: baseline.config.inputChannels)
        let batch = spec.batchSize ?? trainSpec.training.batchSize
        let (selection, split) = data.val.isEmpty ? (data.train, "train") : (data.val, "validation")
        let score = { (model: UNet) in Evaluation.evaluate(model, on: selection, batchSize: batch).dice }
        let baselineScore = score(baseline)
        events(.note("sensitivity of \(spec.method) on \(spec.slots.count) layer(s), \(spec.candidates) candidates each; baseline \(split) Dice \(String(format: "%.4f", baselineScore))"))
        let layers = try Sensitivity.measure(model: baseline, slots: spec.slots, method: spec.method, candidates: spec.candidates,
                                             imageSize: trainSpec.imageSize, profile: profile, score: score) { done, total, text in
            events(.note("\(done)/\(total) \(text)"))
        }
        let table = SensitivityTable(baselineSHA256: baselineSHA256, imageSize: trainSpec.imageSize, selectionSplit: split,
                                     baselineScore: baselineScore, parameters: baseline.parameterCount,
                                     flops: baseline.flopsPerImage(height: trainSpec.imageSize, width: trainSpec.imageSize),
                                     latencyProfile: profile.map(LatencyProfileRef.init), layers: layers)
        try OutputFiles.makeDirectory(outDir)
        try OutputFiles.writeJSON(table, to: outDir + "/" + tableFile)
        return table
    }

    /// Merges the table's pieces (or one reused table), checks they were measured on this baseline,
    /// and allocates: writes the plan (`allocation.json`), the uniform-SVD plan at the same budget
    /// (`uniform-svd.json`) and the merged table (`sensitivity.json`).
    public static func allocate(_ spec: AllocationSpec, baselinePath: String, baselineSHA256: String, tables: [String],
                                reusedTable: Bool, outDir: String, events: @escaping (TrainingEvent) -> Void = { _ in }) throws -> AllocationResult {
        let pieces = try tables.map { try OutputFiles.readJSON(SensitivityTable.self, from: $0) }
        var table = try SensitivityTable.merge(pieces)
        guard table.baselineSHA256 == baselineSHA256 else {
            throw CompressionError("the sensitivity table was measured on another baseline (SHA-256 \(table.baselineSHA256.prefix(12))…, this one is \(baselineSHA256.prefix(12))…): measure it again")
        }
        let missing = spec.methods.filter { !table.methods.contains($0) }
        guard missing.isEmpty else {
            throw CompressionError("the sensitivity table has no measurements for \(missing.joined(separator: ", ")) (it holds \(table.methods.joined(separator: ", ")))")
        }
        let full = table
        for i in table.layers.indices { table.layers[i].options.removeAll { !spec.methods.contains($0.method) } }
        let profile = try spec.latencyProfile.map { path throws(CompressionError) in try LatencyProfile.read(path: path) }
        let answer = try Sensitivity.allocate(table, measure: spec.measure, fraction: spec.fraction)
        // The model alone: a Keras baseline records no data, and the table knows the image size.
        let (baseline, _) = try ModelFile.load(path: baselinePath)
        let (_, summary) = try ModelCompressor.compress(model: baseline, method: .allocated(answer.plan), imageSize: table.imageSize)
        let uniform = try Sensitivity.uniformSVD(model: baseline, imageSize: table.imageSize, measure: spec.measure,
                                                 fraction: spec.fraction, profile: profile)
        events(.note(String(format: "%@: predicted %@ Dice %.4f (baseline %.4f), parameters -%.1f%%, FLOPs -%.1f%%; uniform SVD at this budget: %@",
                            answer.plan.label, table.selectionSplit, answer.predictedScore, answer.baselineScore,
                            summary.parameterReductionPercent, summary.flopReductionPercent, uniform.map { "r=\($0.rank)" } ?? "none fits")))
        try OutputFiles.makeDirectory(outDir)
        try OutputFiles.writeJSON(answer.plan, to: outDir + "/" + planFile)
        // With no uniform rank that fits, the comparison job keeps the whole model: an empty plan.
        let uniformPlan = uniform?.plan ?? LayerPlan(label: String(format: "%@ %g%% (no rank fits: full)", spec.measure.rawValue, 100 * spec.fraction),
                                                     slug: "uniform-svd-\(spec.measure.slug)\(spec.fraction)", entries: [])
        try OutputFiles.writeJSON(uniformPlan, to: outDir + "/" + uniformPlanFile)
        try OutputFiles.writeJSON(full, to: outDir + "/" + tableFile)
        return AllocationResult(answer: answer, parameters: summary.parametersAfter, flops: summary.flopsAfter,
                                parameterReductionPercent: summary.parameterReductionPercent, flopReductionPercent: summary.flopReductionPercent,
                                uniformSVDRank: uniform?.rank, uniformSVDFraction: uniform.map { $0.cost / $0.total },
                                tableLayers: table.layers.count, tableOptions: table.layers.reduce(0) { $0 + $1.options.count },
                                reusedTable: reusedTable)
    }
}
