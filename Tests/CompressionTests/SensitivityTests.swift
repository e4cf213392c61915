import Foundation
import XCTest
@testable import Compression
@testable import Engine

/// Per-layer plans, the sensitivity measurement and the allocation a budget sweep runs on them.
final class SensitivityTests: XCTestCase {
    let config = UNetConfig(inputChannels: 3, baseFilters: 8, depth: 2)
    let size = 16

    func testAPlanFactorisesOnlyItsLayersAndReadsBackFromJSON() throws {
        let model = randomisedUNet(config, seed: 3)
        let plan = LayerPlan(label: "params 40%", slug: "budget-p0.4", entries: [
            .init(layer: "enc1_conv1", method: .svd(rank: 2)),
            .init(layer: "bottleneck_conv2", method: .tucker2(.fixed(3))),
        ])
        let (compressed, summary) = try ModelCompressor.compress(model: model, method: .allocated(plan), imageSize: size)
        for d in summary.layers {
            switch d.name {
            case "enc1_conv1": XCTAssertTrue(d.factorised && d.rank == 2, "\(d)")
            case "bottleneck_conv2": XCTAssertTrue(d.factorised && d.rank == 3 && d.outputRank == 3, "\(d)")
            case "head": XCTAssertEqual(d.skipReason, .outputHead)
            default: XCTAssertEqual(d.skipReason, .keptFullByPlan, d.name)
            }
        }
        XCTAssertEqual(summary.factorisedLayerCount, 2)
        XCTAssertTrue(compressed.convolutions.first { $0.name == "enc1_conv1" } is LowRankConv2D)
        XCTAssertTrue(compressed.convolutions.first { $0.name == "bottleneck_conv2" } is Tucker2Conv2D)
        XCTAssertTrue(compressed.convolutions.first { $0.name == "enc0_conv1" } is Conv2D)

        let method = CompressionMethod.allocated(plan)
        let json = try JSONEncoder().encode(method)
        XCTAssertEqual(try JSONDecoder().decode(CompressionMethod.self, from: json), method)
        XCTAssertEqual(method.description, "params 40%")

        // A layer the model does not have, a layer listed twice and a plan inside a plan are refused.
        let unknown = LayerPlan(label: "x", slug: "x", entries: [.init(layer: "enc9_conv1", method: .svd(rank: 2))])
        XCTAssertThrowsError(try ModelCompressor.compress(model: model, method: .allocated(unknown), imageSize: size)) {
            XCTAssertTrue("\($0)".contains("enc9_conv1"), "\($0)")
        }
        let twice = LayerPlan(label: "x", slug: "x", entries: [.init(layer: "enc0_conv2", method: .svd(rank: 2)), .init(layer: "enc0_conv2", method: .svd(rank: 3))])
        XCTAssertThrowsError(try CompressionMethod.allocated(twice).validate())
        let nested = LayerPlan(label: "x", slug: "x", entries: [.init(layer: "enc0_conv2", method: .allocated(plan))])
        XCTAssertThrowsError(try CompressionMethod.allocated(nested).validate())
    }

    func testTheUniformPlanIsExactlyUniformSVD() throws {
        let model = randomisedUNet(config, seed: 5)
        let answer = try XCTUnwrap(try Sensitivity.uniformSVD(model: model, imageSize: size, measure: .params, fraction: 0.5, profile: nil))
        let (byPlan, planSummary) = try ModelCompressor.compress(model: model, method: .allocated(answer.plan), imageSize: size)
        let (bySVD, svdSummary) = try ModelCompressor.compress(model: model, method: .svd(rank: answer.rank), imageSize: size)
        XCTAssertEqual(planSummary.parametersAfter, svdSummary.parametersAfter)
        XCTAssertEqual(Double(planSummary.parametersAfter), answer.cost)
        XCTAssertLessThanOrEqual(answer.cost, 0.5 * answer.total, "the budget holds")
        XCTAssertEqual(byPlan.stateDictionary.mapValues(\.storage), bySVD.stateDictionary.mapValues(\.storage), "the same weights")
        // The next rank up would not fit: the largest uniform rank within the budget.
        let (_, next) = try ModelCompressor.compress(model: model, method: .svd(rank: answer.rank + 1), imageSize: size)
        XCTAssertGreaterThan(Double(next.parametersAfter), 0.5 * answer.total)
    }

    func testCandidateRanksAscendBelowBreakEven() throws {
        let model = randomisedUNet(config, seed: 7)
        for conv in model.convolutions.compactMap({ $0 as? Conv2D }) where conv.kernelHeight == 3 {
            for method in Sensitivity.methods {
                let ranks = Sensitivity.candidateRanks(conv, method: method, count: 8)
                XCTAssertFalse(ranks.isEmpty, "\(conv.name) \(method)")
                XCTAssertEqual(ranks, ranks.sorted(), "ascending")
                XCTAssertEqual(Set(ranks).count, ranks.count, "no repeats")
                XCTAssertGreaterThanOrEqual(ranks.first!, 1)
                let (_, s) = try ModelCompressor.compress(model: model, method: .allocated(LayerPlan(label: "t", slug: "t", entries: [
                    .init(layer: conv.name, method: try Sensitivity.method(method, rank: ranks.last!))])), imageSize: size)
                XCTAssertTrue(s.layers.first { $0.name == conv.name }!.factorised, "\(conv.name) \(method) r=\(ranks.last!) saves parameters")
            }
        }
        XCTAssertThrowsError(try Sensitivity.method("arsvd", rank: 2))
    }

    /// A score that falls with the change of the model's output on a fixed input: a stand-in for
    /// validation Dice that every layer's factorisation moves by a different amount.
    func score(reference: Tensor, input: Tensor) -> (UNet) -> Double {
        { model in 1 - Double(model.forward(input, training: false).maxAbsDifference(reference)) }
    }

    func table(_ model: UNet, methods: [String]) throws -> SensitivityTable {
        let x = randomTensor([2, size, size, 3], seed: 11)
        let reference = model.forward(x, training: false)
        let score = score(reference: reference, input: x)
        var pieces: [SensitivityTable] = []
        for method in methods {
            // Two pieces per method, as two jobs would measure them.
            for slots in [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] {
                let layers = try Sensitivity.measure(model: model, slots: slots, method: method, candidates: 4, imageSize: size, profile: nil, score: score)
                XCTAssertEqual(layers.map(\.slot), slots)
                pieces.append(SensitivityTable(baselineSHA256: "abc", imageSize: size, selectionSplit: "validation", baselineScore: score(model),
                                               parameters: model.parameterCount, flops: model.flopsPerImage(height: size, width: size),
                                               latencyProfile: nil, layers: layers))
            }
        }
        return try SensitivityTable.merge(pieces.reversed())
    }

    func testAllocationsMeetTheirBudgetsGrowWithThemAndRepeat() throws {
        let model = randomisedUNet(config, seed: 9)
        let t = try table(model, methods: ["svd", "tucker2"])
        XCTAssertEqual(t.layers.map(\.slot), Array(0..<10), "merged in slot order")
        XCTAssertEqual(t.methods, ["svd", "tucker2"])
        XCTAssertTrue(t.layers.allSatisfy { l in l.options.contains { $0.method == "svd" } && l.options.contains { $0.method == "tucker2" } })
        XCTAssertTrue(t.layers.flatMap(\.options).contains { $0.score < t.baselineScore }, "factorising loses something somewhere")
        // A plan of one measured option rebuilds exactly the model that was measured, even where the
        // kernel allowed less than the rank asked for (Tucker-2 on a 3-channel input).
        let x = randomTensor([2, size, size, 3], seed: 11)
        let measure = score(reference: model.forward(x, training: false), input: x)
        for layer in t.layers {
            for o in layer.options {
                let plan = LayerPlan(label: "one", slug: "one", entries: [.init(layer: layer.name, method: try Sensitivity.method(o.method, rank: o.rank))])
                let (rebuilt, s) = try ModelCompressor.compress(model: model, method: .allocated(plan), imageSize: size)
                XCTAssertEqual(s.parametersAfter - s.parametersBefore + layer.parameters, o.parameters, "\(layer.name) \(o.method) \(o.rank)")
                XCTAssertEqual(measure(rebuilt), o.score, "\(layer.name) \(o.method) \(o.rank)")
            }
        }

        var previousDrop = Double.infinity
        for fraction in [0.3, 0.45, 0.6, 0.8, 1.0] {
            for measure in [BudgetMeasure.params, .flops] {
                let answer = try Sensitivity.allocate(t, measure: measure, fraction: fraction)
                XCTAssertEqual(try Sensitivity.allocate(t, measure: measure, fraction: fraction), answer, "deterministic")
                let (_, s) = try ModelCompressor.compress(model: model, method: .allocated(answer.plan), imageSize: size)
                let achieved = measure == .params ? Double(s.parametersAfter) : Double(s.flopsAfter)
                XCTAssertLessThanOrEqual(achieved, fraction * answer.total + 1e-9, "\(measure) \(fraction): the plan's model meets the budget")
                XCTAssertEqual(achieved, answer.predictedCost, accuracy: 1e-9, "the predicted cost is the model's")
                XCTAssertEqual(answer.choices.count, t.layers.count)
                XCTAssertEqual(answer.plan.entries.count, answer.choices.filter { $0.method != nil }.count)
                if measure == .params {
                    let drop = answer.baselineScore - answer.predictedScore
                    XCTAssertLessThanOrEqual(drop, previousDrop + 1e-12, "a larger budget never predicts a larger loss")
                    previousDrop = drop
                }
            }
        }
        XCTAssertEqual(previousDrop, 0, "the whole model's budget loses nothing")
        XCTAssertThrowsError(try Sensitivity.allocate(t, measure: .params, fraction: 0.01)) {
            XCTAssertTrue("\($0)".contains("cannot be met"), "\($0)")
        }
        XCTAssertThrowsError(try Sensitivity.allocate(t, measure: .latency, fraction: 0.5)) {
            XCTAssertTrue("\($0)".contains("latency profile"), "\($0)")
        }
    }

    func testALatencyBudgetCountsTheProfilesMilliseconds() throws {
        let model = randomisedUNet(config, seed: 17)
        let profile = try LatencyProfiler.profile(model: model, imageSize: size, timing: LayerTiming(batch: 1, runs: 1), rounds: 1, host: "here", cpu: "cpu")
        let x = randomTensor([2, size, size, 3], seed: 11)
        let layers = try Sensitivity.measure(model: model, slots: Array(0..<10), method: "svd", candidates: 3, imageSize: size, profile: profile,
                                             score: score(reference: model.forward(x, training: false), input: x))
        let slots = ModelCompressor.convolutionSlots(of: model, imageSize: size)
        for layer in layers {
            let conv = slots[layer.slot].layer
            XCTAssertEqual(layer.milliseconds, try profile.entry(for: conv, inputSize: slots[layer.slot].size).fullMs)
            for o in layer.options {
                XCTAssertEqual(o.milliseconds, try profile.times(for: conv, inputSize: slots[layer.slot].size, family: "svd", rank: o.rank).factorisedMs)
            }
        }
        let table = SensitivityTable(baselineSHA256: "abc", imageSize: size, selectionSplit: "validation", baselineScore: 1,
                                     parameters: model.parameterCount, flops: model.flopsPerImage(height: size, width: size),
                                     latencyProfile: LatencyProfileRef(profile), layers: layers)
        let total = layers.reduce(0) { $0 + $1.milliseconds! }
        // Halfway between the fastest plan the profile allows and the full model (on a tiny model a
        // pair can be slower than its layer: then only the full model fits).
        let fastest = layers.reduce(0) { $0 + min($1.milliseconds!, $1.options.map { $0.milliseconds! }.min() ?? .infinity) }
        let fraction = min(1, (fastest + total) / 2 / total + 1e-9)
        let answer = try Sensitivity.allocate(table, measure: .latency, fraction: fraction)
        XCTAssertEqual(answer.total, total, accuracy: 1e-12, "a latency budget counts the profiled layers")
        XCTAssertLessThanOrEqual(answer.predictedCost, fraction * total + 1e-12)
        let chosen = zip(layers, answer.choices).reduce(0.0) { sum, pair in
            sum + (pair.1.rank.map { r in pair.0.options.first { $0.rank == r }!.milliseconds! } ?? pair.0.milliseconds!)
        }
        XCTAssertEqual(answer.predictedCost, chosen, accuracy: 1e-9, "the plan's cost is its layers' profiled times")
    }

    func testPiecesOfDifferentBaselinesDoNotMerge() throws {
        let model = randomisedUNet(config, seed: 13)
        let t = try table(model, methods: ["svd"])
        var other = t
        other.baselineSHA256 = "def"
        XCTAssertThrowsError(try SensitivityTable.merge([t, other]))
        var newer = t
        newer.version = SensitivityTable.formatVersion + 1
        XCTAssertThrowsError(try SensitivityTable.merge([newer]))
        XCTAssertThrowsError(try SensitivityTable.merge([]))
    }
}
