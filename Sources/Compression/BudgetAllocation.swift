/// Per-layer ranks under a budget, from a sensitivity table: the multiple-choice knapsack that picks
/// one option per layer (its full form, or a factorisation at one candidate rank) so that the
/// whole model's cost fits the budget with the least predicted loss of Dice.
///
/// The predicted loss of a model is the sum of its layers' measured drops (each layer factorised
/// alone, the rest full, scored on validation): the additive model AIMET's greedy selection also
/// assumes. A drop below zero (a layer that scored better factorised) counts as zero: one layer's
/// gain is within the noise of a small validation split, and crediting it would buy compression
/// elsewhere with it. Exact over a cost grid, not greedy: costs are rounded up to `units` steps of
/// the compressible cost, so the budget holds for the true costs, and the grid does not depend on
/// the budget, so a larger budget never predicts a larger loss. Pure and deterministic: ties go to
/// the higher cost (of two plans predicted to lose the same, the one that keeps more of the model
/// within the budget: the additive model misses how layers' losses compound), then to the earlier option.
public enum BudgetAllocation {
    /// One way to hold a layer: `rank` nil is the full layer.
    public struct Option: Codable, Sendable, Equatable {
        public var rank: Int?
        /// Parameters (or FLOPs, or profiled milliseconds: whatever the budget counts) of this option.
        public var cost: Double
        /// Validation Dice lost against the baseline with this layer alone in this form (0 for full).
        public var drop: Double
        public init(rank: Int?, cost: Double, drop: Double) { self.rank = rank; self.cost = cost; self.drop = drop }
    }

    public struct Layer: Codable, Sendable, Equatable {
        public var name: String
        /// The first option should be the full layer (drop 0), so that every budget at or above the
        /// full model's cost has an answer.
        public var options: [Option]
        public init(name: String, options: [Option]) { self.name = name; self.options = options }
    }

    public struct Result: Codable, Sendable, Equatable {
        /// Index into each layer's options, in the layers' order.
        public var choices: [Int]
        /// Cost of the chosen options plus the fixed cost.
        public var cost: Double
        /// Sum of the chosen options' drops (negative drops counted as zero).
        public var predictedDrop: Double
    }

    public static let defaultUnits = 4096

    /// The options, one per layer, with the least predicted drop whose total cost plus `fixedCost`
    /// (what is never factorised: BatchNorm, transposed convolutions, the head) is at most `budget`;
    /// nil when even the cheapest options do not fit.
    public static func allocate(_ layers: [Layer], fixedCost: Double, budget: Double, units: Int = defaultUnits) -> Result? {
        precondition(units >= 1, "BudgetAllocation: units must be positive")
        precondition(layers.allSatisfy { !$0.options.isEmpty }, "BudgetAllocation: a layer without options")
        let available = budget - fixedCost
        guard available >= 0 else { return nil }
        // The grid: the most expensive options of all layers together span `units` steps.
        let span = layers.reduce(0.0) { $0 + ($1.options.map(\.cost).max() ?? 0) }
        let step = span > 0 ? span / Double(units) : 1
        func steps(_ cost: Double) -> Int { Int((cost / step).rounded(.up)).clamped(0, units + layers.count) }
        let capacity = min(Int((available / step).rounded(.down)), units + layers.count)
        // best[c]: the least drop (and its cost) of the layers so far within c steps; choice per layer.
        var best = [Double](repeating: 0, count: capacity + 1)
        var exact = [Double](repeating: 0, count: capacity + 1)
        var picks: [[Int]] = []
        for layer in layers {
            var next = [Double](repeating: .infinity, count: capacity + 1)
            var nextCost = [Double](repeating: .infinity, count: capacity + 1)
            var pick = [Int](repeating: -1, count: capacity + 1)
            for c in 0...capacity {
                for (i, option) in layer.options.enumerated() {
                    let s = steps(option.cost)
                    guard s <= c, best[c - s].isFinite else { continue }
                    let drop = best[c - s] + max(0, option.drop), cost = exact[c - s] + option.cost
                    if drop < next[c] || (drop == next[c] && cost > nextCost[c]) {
                        next[c] = drop; nextCost[c] = cost; pick[c] = i
                    }
                }
            }
            best = next; exact = nextCost; picks.append(pick)
        }
        // Every layer in its first form (the full model) is exact, not gridded: a budget of the
        // whole model always has that answer, whatever the rounding.
        let first = layers.map { $0.options[0] }
        let firstCost = first.reduce(fixedCost) { $0 + $1.cost }
        let firstAnswer = firstCost <= budget
            ? Result(choices: Array(repeating: 0, count: layers.count), cost: firstCost, predictedDrop: first.reduce(0) { $0 + max(0, $1.drop) })
            : nil
        guard best[capacity].isFinite else { return firstAnswer }
        // Walk back from the full capacity.
        var choices = [Int](repeating: 0, count: layers.count)
        var c = capacity
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let i = picks[l][c]
            choices[l] = i
            c -= steps(layers[l].options[i].cost)
        }
        let cost = zip(layers, choices).reduce(fixedCost) { $0 + $1.0.options[$1.1].cost }
        let drop = zip(layers, choices).reduce(0.0) { $0 + max(0, $1.0.options[$1.1].drop) }
        let gridded = Result(choices: choices, cost: cost, predictedDrop: drop)
        if let f = firstAnswer, f.predictedDrop < drop || (f.predictedDrop == drop && f.cost > cost) { return f }
        return gridded
    }
}

extension Int {
    fileprivate func clamped(_ lo: Int, _ hi: Int) -> Int { Swift.min(Swift.max(self, lo), hi) }
}
