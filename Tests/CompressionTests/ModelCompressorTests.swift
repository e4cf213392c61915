import Foundation
import XCTest
@testable import Compression
@testable import Engine

final class ModelCompressorTests: XCTestCase {
    let tiny = UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2)

    /// Every 3x3 convolution factorised at its full rank (break-even rule off): the compressed
    /// model's predictions equal the baseline's (max abs error < 1e-4), in both BatchNorm modes.
    func testFullRankCompressionReproducesTheModel() throws {
        let model = randomisedUNet(tiny, seed: 21)
        let (compressed, summary) = try ModelCompressor.compress(
            model: model, method: .svd(rank: 10_000), imageSize: 16, options: .init(enforceBreakEven: false))
        for d in summary.layers.dropLast() {
            XCTAssertTrue(d.factorised, d.name)
            XCTAssertEqual(d.rank, d.fullRank, d.name)
            XCTAssertEqual(d.energyKept, 1, accuracy: 1e-12)
        }
        XCTAssertEqual(compressed.convolutions.filter { $0 is LowRankConv2D }.count, compressed.convolutions.count - 1)
        let x = randomTensor([2, 16, 16, 3], seed: 5, scale: 0.5, offset: 0.5)
        for training in [false, true] {
            let error = compressed.forward(x, training: training).maxAbsDifference(model.forward(x, training: training))
            print("full-rank compressed U-Net (training \(training)): max abs error \(error)")
            XCTAssertLessThan(error, 1e-4)
        }
    }

    /// Compression leaves its input alone: same weights, same full convolutions.
    func testInputModelIsUntouched() throws {
        let model = randomisedUNet(tiny, seed: 22)
        let before = model.stateDictionary
        let (compressed, _) = try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 16)
        XCTAssertEqual(model.stateDictionary, before)
        XCTAssertTrue(model.convolutions.allSatisfy { $0 is Conv2D })
        XCTAssertTrue(compressed.convolutions.contains { $0 is LowRankConv2D })
        // Training the copy does not reach the original either (tensors are values).
        (compressed.convolutions[0] as! LowRankConv2D).first.kernel.value.storage[0] += 1
        XCTAssertEqual(model.stateDictionary, before)
    }

    /// Parameter and FLOP totals equal closed-form formulas written out from the architecture.
    func testCountsMatchClosedForm() throws {
        let config = UNetConfig(inputChannels: 3, baseFilters: 8, depth: 2)
        let size = 32
        let model = UNet(config: config, seed: 3)
        // (name, cin, cout, side of the feature map) of every 3x3 convolution, forward order.
        let convs: [(String, Int, Int, Int)] = [
            ("enc0_conv1", 3, 8, 32), ("enc0_conv2", 8, 8, 32),
            ("enc1_conv1", 8, 16, 16), ("enc1_conv2", 16, 16, 16),
            ("bottleneck_conv1", 16, 32, 8), ("bottleneck_conv2", 32, 32, 8),
            ("dec1_conv1", 32, 16, 16), ("dec1_conv2", 16, 16, 16),
            ("dec0_conv1", 16, 8, 32), ("dec0_conv2", 8, 8, 32),
        ]
        // Transposed convolutions 2x2 stride 2: (cin, cout, input side).
        let ups = [(32, 16, 8), (16, 8, 16)]
        let fixedParams = convs.reduce(0) { $0 + 4 * $1.2 }          // BatchNorm: gamma, beta, mean, variance
            + ups.reduce(0) { $0 + 4 * $1.0 * $1.1 + $1.1 }          // up kernels + biases
            + (8 + 1)                                                // head 1x1, 8 -> 1, bias
        let fixedFlops = ups.reduce(0) { $0 + 2 * $1.2 * $1.2 * 4 * $1.0 * $1.1 } + 2 * size * size * 8
        func expected(rank: Int?) -> (params: Int, flops: Int, factorised: Int) {
            var params = fixedParams, flops = fixedFlops, factorised = 0
            for (_, cin, cout, side) in convs {
                let rows = 9 * cin
                if let rank, case let r = min(rank, rows, cout), r * (rows + cout) < rows * cout {
                    params += rows * r + r * cout + cout
                    flops += 2 * side * side * (rows * r + r * cout)
                    factorised += 1
                } else {
                    params += rows * cout + cout
                    flops += 2 * side * side * rows * cout
                }
            }
            return (params, flops, factorised)
        }
        let base = expected(rank: nil)
        XCTAssertEqual(model.parameterCount, base.params)
        XCTAssertEqual(model.flopsPerImage(height: size, width: size), base.flops)
        for rank in [1, 3, 5, 7, 12, 100] {
            let (compressed, s) = try ModelCompressor.compress(model: model, method: .svd(rank: rank), imageSize: size)
            let e = expected(rank: rank)
            print("svd r=\(rank): params \(s.parametersBefore) -> \(s.parametersAfter) (-\(s.parameterReductionPercent)%), "
                  + "FLOPs \(s.flopsBefore) -> \(s.flopsAfter), factorised \(s.factorisedLayerCount)")
            XCTAssertEqual(s.parametersBefore, base.params)
            XCTAssertEqual(s.parametersAfter, e.params, "rank \(rank)")
            XCTAssertEqual(compressed.parameterCount, e.params)
            XCTAssertEqual(s.flopsBefore, base.flops)
            XCTAssertEqual(s.flopsAfter, e.flops, "rank \(rank)")
            XCTAssertEqual(s.factorisedLayerCount, e.factorised, "rank \(rank)")
            XCTAssertEqual(s.parameterReductionPercent, 100 * Double(base.params - e.params) / Double(base.params), accuracy: 1e-9)
            XCTAssertEqual(s.flopReductionPercent, 100 * Double(base.flops - e.flops) / Double(base.flops), accuracy: 1e-9)
            // Per-layer accounting adds up to the totals.
            XCTAssertEqual(s.layers.reduce(0) { $0 + $1.parametersBefore - $1.parametersAfter }, s.parametersBefore - s.parametersAfter)
            XCTAssertEqual(s.layers.reduce(0) { $0 + $1.flopsBefore - $1.flopsAfter }, s.flopsBefore - s.flopsAfter)
            XCTAssertEqual(s.trainableParametersBefore - s.trainableParametersAfter, s.parametersBefore - s.parametersAfter)
        }
        // Which layers stay full, by hand: at rank 7 only enc0_conv1 (3x3x3 -> 8: 7 * (27 + 8) = 245
        // > 27 * 8 = 216; break-even 6.17); the next smallest, enc0_conv2, saves (7 * (72 + 8) = 560
        // < 576; break-even 7.2). At rank 100 no layer saves anything.
        let (_, seven) = try ModelCompressor.compress(model: model, method: .svd(rank: 7), imageSize: size)
        XCTAssertEqual(seven.layers.filter { !$0.factorised }.map(\.name), ["enc0_conv1", "head"])  // head: 1x1, 8 -> 1, nothing to save
        let (_, hundred) = try ModelCompressor.compress(model: model, method: .svd(rank: 100), imageSize: size)
        XCTAssertEqual(hundred.factorisedLayerCount, 0)
    }

    /// The Keras reference model: the baseline counts match Keras.
    func testBaselineCountsMatchKerasReference() {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 16, depth: 4), seed: 1)
        XCTAssertEqual(model.parameterCount, 1_946_993)
        XCTAssertEqual(model.trainableParameterCount, 1_944_049)
    }

    /// The head is never factorised; a layer past break-even stays full and says why; every slot
    /// has a decision with its singular values.
    func testDecisionsRecordSkipsAndReasons() throws {
        let model = UNet(config: UNetConfig(inputChannels: 1, baseFilters: 4, depth: 1), seed: 9)
        // enc0_conv1: 9 x 4, break-even 36/13 = 2.77: rank 3 is past it. enc0_conv2: 36 x 4, 3.6: rank 3 saves.
        let (_, summary) = try ModelCompressor.compress(model: model, method: .svd(rank: 3), imageSize: 8)
        XCTAssertEqual(summary.layers.map(\.name), model.convolutions.map(\.name))
        let byName = Dictionary(uniqueKeysWithValues: summary.layers.map { ($0.name, $0) })
        let head = try XCTUnwrap(byName["head"])
        XCTAssertFalse(head.factorised)
        XCTAssertEqual(head.skipReason, .outputHead)
        XCTAssertEqual(head.skipReasonText, "output head")
        XCTAssertEqual(head.parametersAfter, head.parametersBefore)
        let first = try XCTUnwrap(byName["enc0_conv1"])
        XCTAssertFalse(first.factorised)
        XCTAssertEqual(first.chosenRank, 3)
        XCTAssertNil(first.rank)
        XCTAssertEqual(first.energyKept, 1)
        XCTAssertEqual(first.skipReason, .pastBreakEven(rank: 3, breakEven: 36.0 / 13.0))
        XCTAssertEqual(first.skipReasonText, "rank 3 >= break-even 2.77")
        XCTAssertEqual(first.kernelShape, [3, 3, 1, 4])
        XCTAssertEqual(first.fullRank, 4)
        XCTAssertEqual(first.singularValues.count, 4)
        let second = try XCTUnwrap(byName["enc0_conv2"])
        XCTAssertTrue(second.factorised)
        XCTAssertEqual(second.rank, 3)
        XCTAssertNil(second.skipReason)
        XCTAssertEqual(second.parametersAfter, 36 * 3 + 3 * 4 + 4)
        XCTAssertLessThan(second.energyKept, 1)
        XCTAssertEqual(second.energyKept, second.energyAtChosenRank)
        // Even with the break-even rule off, the head stays full.
        let (_, forced) = try ModelCompressor.compress(model: model, method: .svd(rank: 1), imageSize: 8,
                                                      options: .init(enforceBreakEven: false))
        XCTAssertEqual(forced.layers.last?.skipReason, .outputHead)
        // The summary round-trips through JSON, reasons as text included.
        let json = try JSONEncoder().encode(summary)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("rank 3 >= break-even 2.77"))
        XCTAssertEqual(try JSONDecoder().decode(CompressionSummary.self, from: json), summary)
    }

    /// Compressing a compressed model leaves its factorised layers alone.
    func testAlreadyFactorisedLayersAreLeftAlone() throws {
        let model = UNet(config: tiny, seed: 4)
        let (once, _) = try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 16)
        let (twice, summary) = try ModelCompressor.compress(model: once, method: .svd(rank: 1), imageSize: 16)
        XCTAssertEqual(twice.stateDictionary, once.stateDictionary)
        XCTAssertEqual(summary.parametersAfter, summary.parametersBefore)
        let reasons = summary.layers.compactMap(\.skipReason)
        XCTAssertTrue(reasons.contains(.alreadyFactorised(rank: 2)))
    }

    /// A compressed model saved and loaded predicts exactly what it predicted before.
    func testSaveLoadRoundTripGivesIdenticalPredictions() throws {
        let model = randomisedUNet(tiny, seed: 23)
        let (compressed, _) = try ModelCompressor.compress(model: model, method: .arsvd(tau: 0.8), imageSize: 16)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("compressed-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try compressed.save(to: path)
        let loaded = try UNet.load(path: path).model
        XCTAssertEqual(loaded.convolutions.map { ($0 as? LowRankConv2D)?.rank ?? -1 },
                       compressed.convolutions.map { ($0 as? LowRankConv2D)?.rank ?? -1 })
        XCTAssertEqual(loaded.parameterCount, compressed.parameterCount)
        let x = randomTensor([2, 16, 16, 3], seed: 8, scale: 0.5, offset: 0.5)
        XCTAssertEqual(loaded.forward(x, training: false), compressed.forward(x, training: false))
    }

    /// A profile of this model's layers where every pair at rank 2 is faster than its full layer,
    /// except `slow` (not faster: the equal case counts as not faster too).
    func profile(of model: UNet, imageSize: Int, slow: [String: (full: Double, pair: Double)]) -> LatencyProfile {
        let layers = ModelCompressor.convolutionSlots(of: model, imageSize: imageSize).filter { !$0.isHead }.map { slot in
            let conv = slot.layer
            let (full, pair) = slow[conv.name] ?? (2.0, 1.0)
            // Rank 1 and rank 3 bracket the rank asked for (2): it is interpolated between them.
            return LatencyProfile.Layer(name: conv.name, kernelShape: [conv.kernelHeight, conv.kernelWidth, conv.inChannels, conv.outChannels],
                                        inputSize: slot.size, fullMs: full, fullSpreadMs: [full, full],
                                        pairs: ["svd": [.init(rank: 1, ms: pair - 0.5, spreadMs: []), .init(rank: 3, ms: pair + 0.5, spreadMs: [])]])
        }
        return LatencyProfile(host: "target-host", cpu: "Test CPU", blasCore: "none", threads: 1, batch: 1, runs: 1,
                              imageSize: imageSize, createdAt: "2026-12-07T00:00:00Z", layers: layers)
    }

    /// With a latency profile, a pair the profile times no faster than its full layer is not used:
    /// the slot keeps the full convolution (its outputs unchanged, its FLOPs counted as full) and
    /// says why, with both figures; the summary names the profile's host. The same profile gives the
    /// same model every time: the decision is the file's, never this machine's clock.
    func testPairsTheProfileTimesNoFasterStayFullAndSayWhy() throws {
        let model = randomisedUNet(tiny, seed: 23)
        let target = profile(of: model, imageSize: 16, slow: ["enc1_conv2": (1.0, 1.5), "dec0_conv1": (2.0, 2.0)])
        let (compressed, summary) = try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 16, latencyProfile: target)
        let (untimed, plain) = try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 16)
        XCTAssertEqual(summary.latencyProfile, LatencyProfileRef(target))
        XCTAssertNil(plain.latencyProfile)
        XCTAssertGreaterThanOrEqual(plain.layers.filter(\.factorised).count, 4)
        let byName = Dictionary(uniqueKeysWithValues: summary.layers.map { ($0.name, $0) })
        let slow = try XCTUnwrap(byName["enc1_conv2"])
        XCTAssertFalse(slow.factorised)
        XCTAssertNil(slow.rank)
        XCTAssertEqual(slow.chosenRank, 2)
        XCTAssertEqual(slow.skipReason, .slowerThanFull(fullMs: 1.0, factorisedMs: 1.5))
        XCTAssertEqual(slow.skipReasonText, "factorised not faster: 1.500 ms/image vs full 1.000 (latency profile)")
        XCTAssertEqual(slow.flopsAfter, slow.flopsBefore)
        XCTAssertEqual(slow.parametersAfter, slow.parametersBefore)
        XCTAssertEqual(slow.measuredFullMs, 1.0)
        XCTAssertEqual(slow.measuredFactorisedMs, 1.5)
        XCTAssertEqual(byName["dec0_conv1"]?.skipReason, .slowerThanFull(fullMs: 2.0, factorisedMs: 2.0))
        let fast = try XCTUnwrap(byName["enc1_conv1"])
        XCTAssertTrue(fast.factorised)
        XCTAssertEqual(fast.measuredFactorisedMs, 1.0)
        for (layer, decision) in zip(compressed.convolutions, summary.layers) {
            XCTAssertEqual(layer is LowRankConv2D, decision.factorised, decision.name)
        }
        XCTAssertEqual(summary.factorisedLayerCount, plain.factorisedLayerCount - 2)
        let plainByName = Dictionary(uniqueKeysWithValues: plain.layers.map { ($0.name, $0) })
        let restored = ["enc1_conv2", "dec0_conv1"].map { byName[$0]!.flopsBefore - plainByName[$0]!.flopsAfter }.reduce(0, +)
        XCTAssertGreaterThan(restored, 0)
        XCTAssertEqual(summary.flopsAfter, plain.flopsAfter + restored)
        let x = randomTensor([2, 16, 16, 3], seed: 6, scale: 0.5, offset: 0.5)
        XCTAssertNotEqual(compressed.forward(x, training: false), untimed.forward(x, training: false))
        // Twice with the same profile: the same model, bit for bit.
        let (again, againSummary) = try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 16, latencyProfile: target)
        var timeless = (againSummary, summary)
        timeless.0.decompositionSeconds = 0; timeless.1.decompositionSeconds = 0   // the SVDs' wall time is an outcome
        XCTAssertEqual(timeless.0, timeless.1)
        XCTAssertEqual(again.forward(x, training: false), compressed.forward(x, training: false))
        let json = try JSONEncoder().encode(summary)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("slowerThanFull"))
        XCTAssertEqual(try JSONDecoder().decode(CompressionSummary.self, from: json), summary)
    }

    /// A profile made for another model or image size is refused, naming the layer; one without
    /// pairs of the method's family says to profile again.
    func testAProfileOfAnotherModelIsRefused() throws {
        let model = randomisedUNet(tiny, seed: 24)
        let target = profile(of: model, imageSize: 16, slow: [:])
        XCTAssertThrowsError(try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 32, latencyProfile: target)) {
            XCTAssertTrue("\($0)".contains("was made for another model: layer enc0_conv1 is 3x3x3x4 at 16 px there, 3x3x3x4 at 32 px here"), "\($0)")
        }
        let other = randomisedUNet(UNetConfig(inputChannels: 1, baseFilters: 4, depth: 2), seed: 24)
        XCTAssertThrowsError(try ModelCompressor.compress(model: other, method: .svd(rank: 2), imageSize: 16, latencyProfile: target)) {
            XCTAssertTrue("\($0)".contains("layer enc0_conv1 is 3x3x3x4 at 16 px there, 3x3x1x4 at 16 px here"), "\($0)")
        }
        var noPairs = target
        noPairs.layers[0].pairs = [:]
        XCTAssertThrowsError(try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 16, latencyProfile: noPairs)) {
            XCTAssertTrue("\($0)".contains("has no svd pairs for layer enc0_conv1"), "\($0)")
        }
    }

    /// Between profiled ranks the time is linear; outside them, the nearest end's.
    func testProfileInterpolation() {
        let points: [LatencyProfile.Point] = [.init(rank: 2, ms: 1, spreadMs: []), .init(rank: 6, ms: 3, spreadMs: []), .init(rank: 10, ms: 4, spreadMs: [])]
        XCTAssertEqual(LatencyProfile.interpolate(points, rank: 1), 1)
        XCTAssertEqual(LatencyProfile.interpolate(points, rank: 2), 1)
        XCTAssertEqual(LatencyProfile.interpolate(points, rank: 3), 1.5)
        XCTAssertEqual(LatencyProfile.interpolate(points, rank: 6), 3)
        XCTAssertEqual(LatencyProfile.interpolate(points, rank: 8), 3.5)
        XCTAssertEqual(LatencyProfile.interpolate(points, rank: 40), 4)
        XCTAssertEqual(LatencyProfiler.ladder(breakEven: 23.35), [1, 2, 4, 8, 16, 23])
        XCTAssertEqual(LatencyProfiler.ladder(breakEven: 3.0), [1, 2])
        XCTAssertEqual(LatencyProfiler.ladder(breakEven: 1.0), [])
    }

    /// The profiler on this machine: every slot but the head, each with its ladder of ranks, times
    /// that are finite, and a file that reads back equal; a damaged file is one clear error.
    func testProfilerWritesAProfileThatReadsBack() throws {
        let model = randomisedUNet(tiny, seed: 25)
        var seen: [String] = []
        let p = try LatencyProfiler.profile(model: model, imageSize: 16, timing: LayerTiming(batch: 1, runs: 1), rounds: 1,
                                            host: "here", cpu: "cpu") { done, total, name in
            seen.append(name)
            XCTAssertEqual(done, seen.count)
            XCTAssertEqual(total, model.convolutions.count - 1)
        }
        XCTAssertEqual(p.layers.map(\.name), Array(model.convolutions.dropLast().map(\.name)))
        XCTAssertEqual(seen, p.layers.map(\.name))
        for (layer, slot) in zip(p.layers, ModelCompressor.convolutionSlots(of: model, imageSize: 16)) {
            let conv = slot.layer
            let rows = conv.kernelHeight * conv.kernelWidth * conv.inChannels
            let ranks = LatencyProfiler.ladder(breakEven: Factorisation.breakEvenRank(rows: rows, columns: conv.outChannels))
            XCTAssertEqual(layer.pairs["svd"]?.map(\.rank) ?? [], ranks, layer.name)
            XCTAssertEqual(layer.inputSize, slot.size)
            XCTAssertTrue(layer.fullMs.isFinite && (layer.pairs["svd"] ?? []).allSatisfy { $0.ms.isFinite }, layer.name)
        }
        let path = NSTemporaryDirectory() + "profile-\(UUID()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try JSONEncoder().encode(p).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try LatencyProfile.read(path: path), p)
        try Data("{\"schema\": 1}".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try LatencyProfile.read(path: path)) {
            XCTAssertEqual("\($0)", "latency profile \(path): not a profile written by `ranksweep profile-layers` (no 'host')")
        }
        XCTAssertThrowsError(try LatencyProfile.read(path: path + ".missing")) {
            XCTAssertTrue("\($0)".hasPrefix("latency profile \(path).missing: cannot read it"), "\($0)")
        }
    }

    func testBadRequestsAreClearErrors() {
        let model = UNet(config: tiny, seed: 1)
        XCTAssertThrowsError(try ModelCompressor.compress(model: model, method: .svd(rank: 0), imageSize: 16)) {
            XCTAssertEqual("\($0)", "rank must be a positive integer, got 0")
        }
        XCTAssertThrowsError(try ModelCompressor.compress(model: model, method: .arsvd(tau: 1.01), imageSize: 16))
        XCTAssertThrowsError(try ModelCompressor.compress(model: model, method: .svd(rank: 4), imageSize: 18)) {
            XCTAssertEqual("\($0)", "image size 18 must be a positive multiple of 4 for a depth-2 U-Net")
        }
        let broken = UNet(config: tiny, seed: 1)
        (broken.convolutions[2] as! Conv2D).kernel.value.storage[0] = .infinity
        XCTAssertThrowsError(try ModelCompressor.compress(model: broken, method: .svd(rank: 4), imageSize: 16)) {
            XCTAssertTrue("\($0)".contains("enc1_conv1"), "\($0)")
        }
    }

    /// Backward through the factorised layers of a compressed tiny U-Net matches central
    /// differences of a probe loss L = Σ r·p (training mode, as in fine-tuning; float32 forward,
    /// Double sum; step 1e-2; tolerance 2e-2 relative plus 5e-5 absolute).
    ///
    /// A U-Net is only piecewise smooth: with random BatchNorm shifts a factor entry of an early layer
    /// moves every pixel downstream across many ReLU kinks, and difference quotients then miss by a
    /// few per cent (they converge to the analytic value only as the step shrinks into float32 noise).
    /// So every BatchNorm gets beta = 3, gamma = 0.5, which keeps every ReLU input positive: the
    /// network is smooth apart from max-pooling, a large step is accurate, and the check is sharp.
    /// An entry whose quotients at 1e-2 and 5e-3 disagree (a pooling switch within the step) is set
    /// aside; at most a few may be.
    func testGradientsThroughFactorisedLayersOfACompressedUNet() throws {
        let model = randomisedUNet(UNetConfig(inputChannels: 1, baseFilters: 4, depth: 1), seed: 31)
        for bn in model.batchNorms {
            bn.beta.value = Tensor(shape: [bn.channels], repeating: 3)
            bn.gamma.value = Tensor(shape: [bn.channels], repeating: 0.5)
        }
        let head = try XCTUnwrap(model.head as? Conv2D)
        head.kernel.value = Tensor(shape: head.kernel.value.shape, storage: head.kernel.value.storage.map { $0 * 0.5 })
        head.bias?.value = Tensor(shape: [1], storage: [-1])
        let (compressed, summary) = try ModelCompressor.compress(model: model, method: .svd(rank: 2), imageSize: 8)
        XCTAssertEqual(summary.factorisedLayerCount, 6)
        let x = randomTensor([2, 8, 8, 1], seed: 32, scale: 0.5, offset: 0.5)
        let probe = randomTensor([2, 8, 8, 1], seed: 33)
        func loss() -> Double {
            let p = compressed.forward(x, training: true)
            return zip(p.storage, probe.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        compressed.zeroGradients()
        let p0 = compressed.forward(x, training: true)
        XCTAssertTrue(p0.storage.allSatisfy { $0 > 0.02 && $0 < 0.98 }, "sigmoid saturated: the check would be weak")
        compressed.backward(probe)
        func centralDifference(_ p: Parameter, _ i: Int, _ eps: Float) -> Double {
            let saved = p.value.storage[i]
            p.value.storage[i] = saved + eps; let plus = loss()
            p.value.storage[i] = saved - eps; let minus = loss()
            p.value.storage[i] = saved
            return (plus - minus) / Double(2 * eps)
        }
        var rng = SeededGenerator(seed: 34)
        var worst = 0.0, checked = 0, kinks = 0, magnitudes: [Double] = []
        for pair in compressed.convolutions.compactMap({ $0 as? LowRankConv2D }) {
            for p in [pair.first.kernel, pair.second.kernel] {
                for _ in 0..<4 {
                    let i = Int(rng.next() % UInt64(p.value.count))
                    let numeric = centralDifference(p, i, 1e-2), half = centralDifference(p, i, 5e-3)
                    if abs(numeric - half) > 1e-2 * abs(numeric) + 1e-4 { kinks += 1; continue }
                    let analytic = Double(p.grad.storage[i])
                    let allowed = 2e-2 * abs(analytic) + 5e-5
                    worst = max(worst, abs(analytic - numeric) / allowed)
                    magnitudes.append(abs(analytic))
                    checked += 1
                    XCTAssertLessThanOrEqual(abs(analytic - numeric), allowed,
                                             "\(p.name)[\(i)]: analytic \(analytic), numeric \(numeric) (\(half) at half the step)")
                }
            }
        }
        print("compressed U-Net gradient check: \(checked) factor entries checked, \(kinks) set aside (pooling switch within the step), "
              + "worst |error| / tolerance \(worst), median |gradient| \(magnitudes.sorted()[magnitudes.count / 2])")
        XCTAssertLessThanOrEqual(kinks, 4)
        // The tolerance's absolute part must be small against the gradients it checks.
        XCTAssertGreaterThan(magnitudes.sorted()[magnitudes.count / 2], 1e-3)
    }
}
