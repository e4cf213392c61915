import Engine
import Foundation

/// What a budget counts: parameters, forward FLOPs, or the milliseconds a latency profile gives.
public enum BudgetMeasure: String, Codable, Sendable, CaseIterable {
    case params, flops, latency
}

/// A per-layer sensitivity table: every factorisable layer, each factorised alone at a few
/// candidate ranks with the rest of the model full, scored without fine-tuning on the validation
/// split (AIMET's greedy compression-ratio selection measures the same). Sensitivity jobs each
/// write a piece (one layer, one method); the pieces merge into one table, the sweep's artifact,
/// which a later sweep on the same baseline reuses.
public struct SensitivityTable: Codable, Sendable, Equatable {
    public static let formatVersion = 1

    public struct Option: Codable, Sendable, Equatable {
        /// `svd`, `tucker2` or `spatial-svd`.
        public var method: String
        /// The rank asked for: the plan asks for it again, so the model is the one measured. (A
        /// kernel can allow less: `factorisedRank` and Tucker-2's `outputRank` are what it got.)
        public var rank: Int
        public var factorisedRank: Int?
        public var outputRank: Int?
        /// This layer's parameters, forward FLOPs per image, and profiled milliseconds in this form.
        public var parameters: Int
        public var flops: Int
        public var milliseconds: Double?
        /// Validation Dice of the model with this layer alone in this form.
        public var score: Double
    }

    public struct Layer: Codable, Sendable, Equatable {
        public var name: String
        /// Position among the model's convolutions (forward order).
        public var slot: Int
        /// HWIO.
        public var kernelShape: [Int]
        public var parameters: Int
        public var flops: Int
        public var milliseconds: Double?
        public var options: [Option]
    }

    public var version = SensitivityTable.formatVersion
    /// SHA-256 of the baseline model file the table was measured on: a table is reused only for it.
    public var baselineSHA256: String
    public var imageSize: Int
    /// `validation` (or `train` when the split has no validation images).
    public var selectionSplit: String
    /// The full baseline's Dice on that split.
    public var baselineScore: Double
    /// The whole baseline's parameters and FLOPs per image.
    public var parameters: Int
    public var flops: Int
    /// The profile the milliseconds come from (nil: none was given, no latency budget possible).
    public var latencyProfile: LatencyProfileRef?
    public var layers: [Layer]

    public init(baselineSHA256: String, imageSize: Int, selectionSplit: String, baselineScore: Double, parameters: Int, flops: Int,
                latencyProfile: LatencyProfileRef?, layers: [Layer]) {
        self.baselineSHA256 = baselineSHA256; self.imageSize = imageSize; self.selectionSplit = selectionSplit
        self.baselineScore = baselineScore; self.parameters = parameters; self.flops = flops
        self.latencyProfile = latencyProfile; self.layers = layers
    }

    /// Pieces of one table (the same baseline and split), their layers and options joined, in slot order.
    public static func merge(_ pieces: [SensitivityTable]) throws(CompressionError) -> SensitivityTable {
        guard var table = pieces.first else { throw CompressionError("no sensitivity measurements to merge") }
        var byName: [String: Layer] = [:]
        for piece in pieces {
            guard piece.version == formatVersion else {
                throw CompressionError("sensitivity table version \(piece.version), this ranksweep reads \(formatVersion)")
            }
            guard piece.baselineSHA256 == table.baselineSHA256, piece.imageSize == table.imageSize,
                  piece.selectionSplit == table.selectionSplit, piece.baselineScore == table.baselineScore else {
                throw CompressionError("sensitivity pieces from different baselines or splits cannot be merged")
            }
            for layer in piece.layers {
                if var known = byName[layer.name] {
                    for option in layer.options where !known.options.contains(option) { known.options.append(option) }
                    byName[layer.name] = known
                } else {
                    byName[layer.name] = layer
                }
            }
        }
        table.layers = byName.values.sorted { $0.slot < $1.slot }.map { layer in
            var l = layer
            l.options.sort { ($0.method, $0.rank) < ($1.method, $1.rank) }
            return l
        }
        return table
    }

    /// The methods every layer was measured with.
    public var methods: [String] {
        Array(Set(layers.flatMap { $0.options.map(\.method) })).sorted()
    }
}

/// The budget allocation: the sensitivity table as a knapsack (`BudgetAllocation`), its answer as a
/// `LayerPlan`, and why.
public struct BudgetAnswer: Codable, Sendable, Equatable {
    public struct Choice: Codable, Sendable, Equatable {
        public var layer: String
        /// nil: kept full.
        public var method: String?
        public var rank: Int?
        /// Cost of the layer in the chosen form, and its measured drop alone (0 for full).
        public var cost: Double
        public var drop: Double
    }

    public var measure: BudgetMeasure
    /// The budget as a fraction of the baseline's total (parameters, FLOPs) or of the profiled layers' time.
    public var fraction: Double
    /// The baseline's total and the budget in the measure's units.
    public var total: Double
    public var budget: Double
    /// Predicted cost of the plan (the model's, in the measure's units) and its fraction of `total`.
    public var predictedCost: Double
    /// Baseline validation Dice minus the sum of the chosen layers' drops (the additive model).
    public var predictedScore: Double
    public var baselineScore: Double
    public var choices: [Choice]
    public var plan: LayerPlan
}

public enum Sensitivity {
    /// The methods a budget allocates over: those with an integer rank per layer. (ARSVD picks its
    /// rank by energy; per layer, that is SVD at the rank it would pick.)
    public static let methods = ["svd", "tucker2", "spatial-svd"]

    /// A single-layer method at a fixed rank.
    public static func method(_ name: String, rank: Int) throws(CompressionError) -> CompressionMethod {
        switch name {
        case "svd": return .svd(rank: rank)
        case "tucker2": return .tucker2(.fixed(rank))
        case "spatial-svd": return .spatialSVD(.fixed(rank))
        default: throw CompressionError("a budget allocates over \(methods.joined(separator: ", ")), not \(name)")
        }
    }

    /// The ranks a layer is tried at: `count` fractions of its break-even rank (the rank at which the
    /// pair saves nothing), geometric from 1/32 to 3/4, so the candidates span from a sliver of the
    /// layer to most of it. At least 1, below break-even, without repeats; ascending.
    public static func candidateRanks(_ conv: Conv2D, method: String, count: Int) -> [Int] {
        guard count >= 1 else { return [] }
        let area = conv.kernelHeight * conv.kernelWidth
        let breakEven: Double
        switch method {
        case "tucker2": breakEven = Factorisation.tucker2BreakEvenRank(kernelArea: area, inChannels: conv.inChannels, outChannels: conv.outChannels)
        case "spatial-svd": breakEven = Factorisation.spatialSVDBreakEvenRank(conv)
        default: breakEven = Factorisation.breakEvenRank(rows: area * conv.inChannels, columns: conv.outChannels)
        }
        let lo = 1.0 / 32, hi = 0.75
        var ranks: [Int] = []
        for i in 0..<count {
            let f = count == 1 ? hi : lo * pow(hi / lo, Double(i) / Double(count - 1))
            let r = max(1, Int((f * breakEven).rounded()))
            if Double(r) < breakEven, !ranks.contains(r) { ranks.append(r) }
        }
        return ranks.sorted()
    }

    /// Measures one method on the slots given (indices into `model.convolutions`; the head and
    /// layers that are not full convolutions are left out): each slot factorised alone at each
    /// candidate rank, the model scored by `score` (validation Dice). Returns the table's layers.
    /// `progress(done, total, text)` after each score.
    public static func measure(model: UNet, slots: [Int], method: String, candidates: Int, imageSize: Int,
                               profile: LatencyProfile?, score: (UNet) -> Double,
                               progress: (Int, Int, String) -> Void = { _, _, _ in }) throws(CompressionError) -> [SensitivityTable.Layer] {
        _ = try self.method(method, rank: 1)
        let all = ModelCompressor.convolutionSlots(of: model, imageSize: imageSize)
        var work: [(slot: Int, conv: Conv2D, size: Int, ranks: [Int])] = []
        for index in slots {
            guard all.indices.contains(index) else {
                throw CompressionError("layer slot \(index) is out of range (the model has \(all.count) convolutions)")
            }
            let s = all[index]
            guard !s.isHead, let conv = s.layer as? Conv2D else { continue }
            work.append((index, conv, s.size, candidateRanks(conv, method: method, count: candidates)))
        }
        let total = work.reduce(0) { $0 + $1.ranks.count }
        var done = 0
        var layers: [SensitivityTable.Layer] = []
        for w in work {
            let fullMs = try profile.map { p throws(CompressionError) in try p.entry(for: w.conv, inputSize: w.size).fullMs }
            var layer = SensitivityTable.Layer(name: w.conv.name, slot: w.slot,
                                               kernelShape: [w.conv.kernelHeight, w.conv.kernelWidth, w.conv.inChannels, w.conv.outChannels],
                                               parameters: w.conv.parameterCount, flops: w.conv.flops(height: w.size, width: w.size),
                                               milliseconds: fullMs, options: [])
            for rank in w.ranks {
                let single = try self.method(method, rank: rank)
                let plan = LayerPlan(label: "\(w.conv.name) \(single)", slug: "sensitivity", entries: [.init(layer: w.conv.name, method: single)])
                let (candidate, summary) = try ModelCompressor.compress(model: model, method: .allocated(plan), imageSize: imageSize)
                done += 1
                guard let d = summary.layers.first(where: { $0.name == w.conv.name }), d.factorised, let used = d.rank else {
                    progress(done, total, "\(w.conv.name) \(single): saves nothing, skipped")
                    continue
                }
                var ms: Double?
                if let profile {
                    let lookup = d.outputRank.map { (used + $0 + 1) / 2 } ?? used
                    ms = try profile.times(for: w.conv, inputSize: w.size, family: single.pairFamily, rank: lookup).factorisedMs
                }
                let s = score(candidate)
                layer.options.append(.init(method: method, rank: rank, factorisedRank: used, outputRank: d.outputRank, parameters: d.parametersAfter,
                                           flops: d.flopsAfter, milliseconds: ms, score: s))
                progress(done, total, "\(w.conv.name) \(single): Dice \(formatted(s))")
            }
            layers.append(layer)
        }
        return layers
    }

    /// The allocation for a budget of `fraction` of the baseline (in `measure`): the knapsack over
    /// every layer's options, the full form always among them. Throws when even the cheapest
    /// options do not fit, or the table has no times for a latency budget.
    public static func allocate(_ table: SensitivityTable, measure: BudgetMeasure, fraction: Double) throws(CompressionError) -> BudgetAnswer {
        guard fraction > 0, fraction <= 1 else { throw CompressionError("a budget is a fraction in (0, 1], got \(fraction)") }
        func cost(parameters: Int, flops: Int, ms: Double?) throws(CompressionError) -> Double {
            switch measure {
            case .params: return Double(parameters)
            case .flops: return Double(flops)
            case .latency:
                guard let ms else { throw CompressionError("a latency budget needs a latency profile (budget.latency_profile); this table was measured without one") }
                return ms
            }
        }
        var knapsack: [BudgetAllocation.Layer] = []
        var compressible = 0.0
        for layer in table.layers {
            let full = try cost(parameters: layer.parameters, flops: layer.flops, ms: layer.milliseconds)
            compressible += full
            var options = [BudgetAllocation.Option(rank: nil, cost: full, drop: 0)]
            for o in layer.options {
                options.append(.init(rank: o.rank, cost: try cost(parameters: o.parameters, flops: o.flops, ms: o.milliseconds),
                                     drop: table.baselineScore - o.score))
            }
            knapsack.append(.init(name: layer.name, options: options))
        }
        // Latency counts the profiled layers only (the profile times nothing else).
        let total: Double
        switch measure {
        case .params: total = Double(table.parameters)
        case .flops: total = Double(table.flops)
        case .latency: total = compressible
        }
        let fixed = total - compressible
        let budget = fraction * total
        guard let result = BudgetAllocation.allocate(knapsack, fixedCost: fixed, budget: budget) else {
            let cheapest = fixed + knapsack.reduce(0) { $0 + ($1.options.map(\.cost).min() ?? 0) }
            throw CompressionError(String(format: "a %@ budget of %g%% cannot be met: the cheapest candidates of every layer still need %.2f%% "
                                          + "(%.2f%% is in what is never factorised: transposed convolutions, BatchNorm, the head)",
                                          measure.rawValue, 100 * fraction, 100 * cheapest / total, 100 * fixed / total))
        }
        var choices: [BudgetAnswer.Choice] = []
        var entries: [LayerPlan.Entry] = []
        for (index, layer) in table.layers.enumerated() {
            let pick = result.choices[index], option = knapsack[index].options[pick]
            if pick == 0 {
                choices.append(.init(layer: layer.name, method: nil, rank: nil, cost: option.cost, drop: 0))
            } else {
                let measured = layer.options[pick - 1]
                choices.append(.init(layer: layer.name, method: measured.method, rank: measured.rank, cost: option.cost, drop: option.drop))
                entries.append(.init(layer: layer.name, method: try method(measured.method, rank: measured.rank)))
            }
        }
        let label = String(format: "%@ %g%%", measure.rawValue, 100 * fraction)
        return BudgetAnswer(measure: measure, fraction: fraction, total: total, budget: budget, predictedCost: result.cost,
                            predictedScore: table.baselineScore - result.predictedDrop, baselineScore: table.baselineScore,
                            choices: choices, plan: LayerPlan(label: label, slug: "budget-\(measure.slug)\(fraction)", entries: entries))
    }

    /// The uniform-SVD plan at the same budget, to compare with: the largest single rank whose model
    /// meets it (every layer at that rank; layers where it saves nothing stay full, as `svd` does),
    /// found by compressing the baseline. nil when even rank 1 does not fit.
    public static func uniformSVD(model: UNet, imageSize: Int, measure: BudgetMeasure, fraction: Double,
                                  profile: LatencyProfile?) throws(CompressionError) -> (plan: LayerPlan, rank: Int, cost: Double, total: Double)? {
        func costs(_ method: CompressionMethod) throws(CompressionError) -> (cost: Double, total: Double) {
            let (_, s) = try ModelCompressor.compress(model: model, method: method, imageSize: imageSize)
            switch measure {
            case .params: return (Double(s.parametersAfter), Double(s.parametersBefore))
            case .flops: return (Double(s.flopsAfter), Double(s.flopsBefore))
            case .latency:
                guard let profile else { throw CompressionError("a latency budget needs a latency profile") }
                var cost = 0.0, total = 0.0
                for (slot, d) in zip(ModelCompressor.convolutionSlots(of: model, imageSize: imageSize), s.layers) {
                    guard !slot.isHead, let conv = slot.layer as? Conv2D else { continue }
                    let t = try profile.times(for: conv, inputSize: slot.size, family: "svd", rank: d.rank ?? 1)
                    total += t.fullMs
                    cost += d.factorised ? t.factorisedMs : t.fullMs
                }
                return (cost, total)
            }
        }
        // The widest layer bounds the rank; the cost grows with the rank, so bisect.
        let widest = model.convolutions.map { min($0.kernelHeight * $0.kernelWidth * $0.inChannels, $0.outChannels) }.max() ?? 1
        let smallest = try costs(.svd(rank: 1))
        guard smallest.cost <= fraction * smallest.total else { return nil }
        var lo = 1, hi = widest
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            let c = try costs(.svd(rank: mid))
            if c.cost <= fraction * c.total { lo = mid } else { hi = mid - 1 }
        }
        let (_, summary) = try ModelCompressor.compress(model: model, method: .svd(rank: lo), imageSize: imageSize)
        let entries = summary.layers.filter(\.factorised).map { LayerPlan.Entry(layer: $0.name, method: .svd(rank: lo)) }
        let c = try costs(.svd(rank: lo))
        let label = String(format: "%@ %g%% r=%d", measure.rawValue, 100 * fraction, lo)
        return (LayerPlan(label: label, slug: "uniform-svd-\(measure.slug)\(fraction)", entries: entries), lo, c.cost, c.total)
    }

    static func formatted(_ x: Double) -> String { String(format: "%.4f", x) }
}

extension BudgetMeasure {
    /// The id part: `p` (params), `f` (FLOPs), `l` (latency).
    public var slug: String {
        switch self {
        case .params: "p"
        case .flops: "f"
        case .latency: "l"
        }
    }
}
