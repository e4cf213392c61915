import XCTest
@testable import Compression

/// The budget allocation: a pure function, checked against brute force on small instances.
final class BudgetAllocationTests: XCTestCase {
    typealias Option = BudgetAllocation.Option

    /// Random instances: layers with a full option (drop 0) and factorised options that cost less
    /// and drop more as the rank falls.
    func instance(_ seed: UInt64, layers: Int) -> [BudgetAllocation.Layer] {
        var g = SplitMix(seed)
        return (0..<layers).map { l in
            let full = Double(100 + g.next() % 900)
            var options = [Option(rank: nil, cost: full, drop: 0)]
            for r in [32, 16, 8, 4] {
                let cost = full * Double(r) / 40 + Double(g.next() % 10)
                options.append(Option(rank: r, cost: cost, drop: Double(g.next() % 1000) / 1e4 * Double(40 - r) / 40 - 0.002))
            }
            return .init(name: "l\(l)", options: options)
        }
    }

    /// The least drop over every combination whose exact cost fits.
    func bruteForce(_ layers: [BudgetAllocation.Layer], fixed: Double, budget: Double) -> Double? {
        var best: Double?
        func go(_ l: Int, _ cost: Double, _ drop: Double) {
            if cost > budget { return }
            if l == layers.count { best = min(best ?? .infinity, drop); return }
            for o in layers[l].options { go(l + 1, cost + o.cost, drop + max(0, o.drop)) }
        }
        go(0, fixed, 0)
        return best
    }

    func testTheBudgetHoldsAndTheAnswerIsWithinTheGridOfTheOptimum() throws {
        for seed in UInt64(1)...12 {
            let layers = instance(seed, layers: 5)
            let fixed = 50.0
            let full = layers.reduce(fixed) { $0 + $1.options[0].cost }
            let units = 512
            let span = layers.reduce(0.0) { $0 + $1.options.map(\.cost).max()! }
            let slack = Double(layers.count) * span / Double(units)
            for share in [0.2, 0.35, 0.5, 0.75, 1.0] {
                let budget = full * share
                let result = BudgetAllocation.allocate(layers, fixedCost: fixed, budget: budget, units: units)
                let optimum = bruteForce(layers, fixed: fixed, budget: budget)
                guard let r = result else {
                    // No answer only when a slightly smaller budget has none either.
                    XCTAssertNil(bruteForce(layers, fixed: fixed, budget: budget - slack), "seed \(seed) share \(share)")
                    continue
                }
                XCTAssertLessThanOrEqual(r.cost, budget, "seed \(seed) share \(share): the budget holds")
                let chosenCost = zip(layers, r.choices).reduce(fixed) { $0 + $1.0.options[$1.1].cost }
                XCTAssertEqual(r.cost, chosenCost, accuracy: 1e-9)
                XCTAssertEqual(r.predictedDrop, zip(layers, r.choices).reduce(0) { $0 + max(0, $1.0.options[$1.1].drop) }, accuracy: 1e-12)
                let opt = try XCTUnwrap(optimum)
                XCTAssertGreaterThanOrEqual(r.predictedDrop, opt - 1e-12, "never better than the exact optimum")
                // At least as good as the exact optimum of a budget smaller by the grid's rounding.
                if let tighter = bruteForce(layers, fixed: fixed, budget: budget - slack) {
                    XCTAssertLessThanOrEqual(r.predictedDrop, tighter + 1e-12, "seed \(seed) share \(share)")
                }
            }
        }
    }

    func testALargerBudgetNeverPredictsALargerLossAndTheAnswerIsDeterministic() {
        let layers = instance(99, layers: 8)
        let fixed = 10.0
        let full = layers.reduce(fixed) { $0 + $1.options[0].cost }
        var previous = Double.infinity
        for i in 1...40 {
            let budget = full * Double(i) / 40
            guard let r = BudgetAllocation.allocate(layers, fixedCost: fixed, budget: budget) else { continue }
            XCTAssertLessThanOrEqual(r.predictedDrop, previous, "budget \(budget)")
            previous = r.predictedDrop
            XCTAssertEqual(BudgetAllocation.allocate(layers, fixedCost: fixed, budget: budget), r, "the same input, the same answer")
        }
        XCTAssertEqual(previous, 0, "the whole model's budget loses nothing")
    }

    func testTiesKeepMoreOfTheModelAndImpossibleBudgetsHaveNoAnswer() {
        // Factorising loses nothing measurable (a gain, clamped to zero): within a budget that holds
        // the full layer, the full layer is kept (the same predicted loss, more of the model).
        let free = BudgetAllocation.Layer(name: "a", options: [Option(rank: nil, cost: 100, drop: 0), Option(rank: 8, cost: 40, drop: -0.01)])
        let costly = BudgetAllocation.Layer(name: "b", options: [Option(rank: nil, cost: 100, drop: 0), Option(rank: 8, cost: 40, drop: 0.05)])
        let r = BudgetAllocation.allocate([free, costly], fixedCost: 0, budget: 1000)
        XCTAssertEqual(r?.choices, [0, 0])
        XCTAssertEqual(r?.predictedDrop, 0)
        // Only one layer fits whole: the free one is factorised, not the costly one.
        XCTAssertEqual(BudgetAllocation.allocate([free, costly], fixedCost: 0, budget: 150)?.choices, [1, 0])
        // Costs are rounded up to the grid (200/4096 here): a budget exactly at a total may miss it by a step.
        XCTAssertEqual(BudgetAllocation.allocate([free, costly], fixedCost: 0, budget: 141)?.choices, [1, 0])
        XCTAssertEqual(BudgetAllocation.allocate([free, costly], fixedCost: 0, budget: 81)?.choices, [1, 1])
        XCTAssertNil(BudgetAllocation.allocate([free, costly], fixedCost: 0, budget: 79))
        XCTAssertNil(BudgetAllocation.allocate([free, costly], fixedCost: 90, budget: 80), "the fixed cost alone is over")
    }
}

/// A small deterministic generator for test instances.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
