import Foundation
import XCTest
@testable import Compression
@testable import Engine

/// Tucker-2 and spatial SVD: exact at full rank against a float64 convolution, ranks by rule and
/// by VBMF, break-even, per-layer accounting with hand-derived numbers, and the method's spellings.
final class Tucker2SpatialSVDTests: XCTestCase {
    /// 'Same' convolution of `x` with `conv`'s kernel and bias, accumulated in Double.
    func reference(_ x: Tensor, _ conv: Conv2D) -> [Double] {
        let (n, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cout) = (conv.kernelHeight, conv.kernelWidth, conv.outChannels)
        let k = conv.kernel.value.storage
        var y = [Double](repeating: 0, count: n * h * w * cout)
        for b in 0..<n { for i in 0..<h { for j in 0..<w { for o in 0..<cout {
            var s = Double(conv.bias?.value.storage[o] ?? 0)
            for dy in 0..<kh { for dx in 0..<kw {
                let si = i + dy - (kh - 1) / 2, sj = j + dx - (kw - 1) / 2
                guard si >= 0, si < h, sj >= 0, sj < w else { continue }
                for c in 0..<cin { s += Double(x.storage[((b * h + si) * w + sj) * cin + c]) * Double(k[((dy * kw + dx) * cin + c) * cout + o]) }
            } }
            y[((b * h + i) * w + j) * cout + o] = s
        } } } }
        return y
    }

    func maxError(_ y: Tensor, _ expected: [Double]) -> Double {
        zip(y.storage, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
    }

    func testFullRankTucker2AndSpatialSVDReproduceTheLayer() throws {
        // Shapes where a channel unfolding is wider than tall and the other way round, and a 5x5 kernel.
        for (k, cin, cout) in [(3, 5, 7), (3, 16, 8), (3, 2, 30), (5, 3, 4)] {
            let conv = Conv2D(name: "conv", kernel: randomTensor([k, k, cin, cout], seed: UInt64(cin * 10 + cout), scale: 0.5),
                              bias: randomTensor([cout], seed: 3, scale: 0.2))
            let x = randomTensor([2, 9, 7, cin], seed: 17)
            let expected = reference(x, conv)
            let inputSVD = try Factorisation.decomposeInputChannels(conv), outputSVD = try Factorisation.decompose(conv)
            XCTAssertEqual(inputSVD.k, min(cin, k * k * cout))
            let tucker = Factorisation.tucker2(conv, inputRank: inputSVD.k, outputRank: outputSVD.k, inputSVD: inputSVD,
                                               outputSVD: outputSVD, workspace: Workspace())
            XCTAssertEqual(tucker.layer.core.kernel.value.shape, [k, k, inputSVD.k, outputSVD.k])
            XCTAssertEqual(tucker.energyKept, 1, accuracy: 1e-5)
            let tuckerError = maxError(tucker.layer.forward(x, training: false), expected)
            let spatialSVD = try Factorisation.decomposeSpatially(conv)
            XCTAssertEqual([spatialSVD.rows, spatialSVD.columns], [k * cin, k * cout])
            let spatial = Factorisation.spatialSVD(conv, rank: spatialSVD.k, svd: spatialSVD, workspace: Workspace())
            XCTAssertEqual(spatial.vertical.kernel.value.shape, [k, 1, cin, spatialSVD.k])
            XCTAssertEqual(spatial.horizontal.kernel.value.shape, [1, k, spatialSVD.k, cout])
            let spatialError = maxError(spatial.forward(x, training: false), expected)
            print("full rank \(k)x\(k) \(cin)->\(cout): Tucker-2 max error \(tuckerError), spatial SVD \(spatialError)")
            XCTAssertLessThan(tuckerError, 1e-4)
            XCTAssertLessThan(spatialError, 1e-4)
            // Below full rank the approximation is not exact: the test can fail.
            let low = Factorisation.spatialSVD(conv, rank: 1, svd: spatialSVD, workspace: Workspace())
            XCTAssertGreaterThan(maxError(low.forward(x, training: false), expected), 1e-3)
        }
    }

    /// Tucker-2 keeps `‖G‖²/‖W‖²` of the energy; the rest is exactly the squared reconstruction error.
    func testTucker2EnergyIsOneMinusTheReconstructionError() throws {
        let conv = Conv2D(name: "conv", kernel: randomTensor([3, 3, 6, 8], seed: 4), bias: nil)
        let inputSVD = try Factorisation.decomposeInputChannels(conv), outputSVD = try Factorisation.decompose(conv)
        let t = Factorisation.tucker2(conv, inputRank: 3, outputRank: 4, inputSVD: inputSVD, outputSVD: outputSVD, workspace: Workspace())
        // W' = U1 G U2ᵀ per spatial position.
        let (u1, g, u2t) = (t.layer.first.kernel.value.storage, t.layer.core.kernel.value.storage, t.layer.last.kernel.value.storage)
        var error = 0.0, total = 0.0
        for p in 0..<9 { for i in 0..<6 { for o in 0..<8 {
            var sum = 0.0
            for a in 0..<3 { for b in 0..<4 { sum += Double(u1[i * 3 + a]) * Double(g[(p * 3 + a) * 4 + b]) * Double(u2t[b * 8 + o]) } }
            let w = Double(conv.kernel.value.storage[(p * 6 + i) * 8 + o])
            error += (w - sum) * (w - sum); total += w * w
        } } }
        XCTAssertLessThan(t.energyKept, 0.99)
        XCTAssertEqual(t.energyKept, 1 - error / total, accuracy: 1e-5)
    }

    /// A rank-5 signal (singular values 10 ... 6) plus small Gaussian-like noise: EVBMF finds 5,
    /// on the matrix and on its transpose; pure noise gives (nearly) nothing.
    func testVBMFFindsTheRankOfASignalInNoise() throws {
        let (m, n, r) = (40, 60, 5)
        let u = try randomOrthonormalColumns(rows: m, columns: r, seed: 1), v = try randomOrthonormalColumns(rows: n, columns: r, seed: 2)
        let noise = randomTensor([m, n], seed: 3, scale: 0.05).storage
        var a = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for t in 0..<r { s += Double(u[i * r + t]) * Double(10 - t) * Double(v[j * r + t]) }
            a[i * n + j] = Float(s) + noise[i * n + j]
        } }
        let svd = try SVD.decompose(a, rows: m, columns: n)
        XCTAssertEqual(VBMF.rank(singularValues: svd.singularValues, rows: m, columns: n), r)
        XCTAssertEqual(VBMF.rank(singularValues: svd.singularValues, rows: n, columns: m), r)
        XCTAssertEqual(RankRule.vbmf.rank(for: svd, channels: n), r)
        let pure = try SVD.decompose(noise, rows: m, columns: n)
        XCTAssertLessThanOrEqual(VBMF.rank(singularValues: pure.singularValues, rows: m, columns: n), 1)
    }

    func testRankRules() throws {
        let svd = try SVD.decompose(randomTensor([20, 12], seed: 5).storage, rows: 20, columns: 12)
        XCTAssertEqual(RankRule.fixed(4).rank(for: svd, channels: 12), 4)
        XCTAssertEqual(RankRule.fixed(400).rank(for: svd, channels: 12), 12)
        XCTAssertEqual(RankRule.fraction(0.25).rank(for: svd, channels: 12), 3)
        XCTAssertEqual(RankRule.fraction(0.3).rank(for: svd, channels: 12), 4, "ceil(3.6)")
        XCTAssertEqual(RankRule.energy(tau: 1).rank(for: svd, channels: 12), 12)
        XCTAssertEqual(RankRule.energy(tau: 0.5).rank(for: svd, channels: 12), CompressionMethod.arsvd(tau: 0.5).rank(for: svd))
        XCTAssertEqual(try RankRule(method: "tucker2", rank: "auto", tau: nil), .vbmf)
        XCTAssertEqual(try RankRule(method: "tucker2", rank: "16", tau: nil), .fixed(16))
        XCTAssertEqual(try RankRule(method: "tucker2", rank: "0.5", tau: nil), .fraction(0.5))
        XCTAssertEqual(try RankRule(method: "tucker2", rank: nil, tau: 0.9), .energy(tau: 0.9))
        for (rank, tau) in [("0", nil), ("1.5", nil), ("-3", nil), ("many", nil), (nil, 1.5), ("4", 0.9), (nil, nil)] as [(String?, Double?)] {
            XCTAssertThrowsError(try RankRule(method: "tucker2", rank: rank, tau: tau), "\(String(describing: rank)) \(String(describing: tau))")
        }
    }

    func testMethodSpellingsAndJSON() throws {
        XCTAssertEqual(try CompressionMethod(name: "tucker2", rankText: "16", tau: nil), .tucker2(.fixed(16)))
        XCTAssertEqual(try CompressionMethod(name: "spatial-svd", rankText: "8", tau: nil), .spatialSVD(.fixed(8)))
        XCTAssertThrowsError(try CompressionMethod(name: "svd", rankText: "auto", tau: nil))
        XCTAssertThrowsError(try CompressionMethod(name: "spatial-svd", rankText: "0", tau: nil)) { error in
            XCTAssertEqual("\(error)", "rank must be a positive integer, got 0")
        }
        let cases: [(CompressionMethod, String)] = [
            (.tucker2(.fixed(16)), #"{"method":"tucker2","rank":16}"#),
            (.tucker2(.vbmf), #"{"method":"tucker2","rank":"auto"}"#),
            (.tucker2(.fraction(0.25)), #"{"method":"tucker2","rank":0.25}"#),
            (.spatialSVD(.fixed(8)), #"{"method":"spatial-svd","rank":8}"#),
            (.spatialSVD(.energy(tau: 0.9)), #"{"method":"spatial-svd","tau":0.9}"#),
            (.svd(rank: 50), #"{"method":"svd","rank":50}"#),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (method, json) in cases {
            XCTAssertEqual(String(decoding: try encoder.encode(method), as: UTF8.self), json)
            XCTAssertEqual(try JSONDecoder().decode(CompressionMethod.self, from: Data(json.utf8)), method)
        }
        XCTAssertThrowsError(try JSONDecoder().decode(CompressionMethod.self, from: Data(#"{"method":"tucker2","rank":"lots"}"#.utf8)))
        XCTAssertEqual(CompressionMethod.tucker2(.vbmf).description, "tucker2 r=auto")
        XCTAssertEqual(CompressionMethod.spatialSVD(.energy(tau: 0.9)).slug, "spatial-svd_tau0.9")
    }

    /// enc1_conv2 of a base-4 depth-2 U-Net is 3x3, 8 -> 8, on 8x8 maps of 16x16 images. By hand:
    /// full 9*8*8 + 8 = 584 weights; Tucker-2 r1 = r2 = 2: 8*2 + 9*2*2 + 2*8 + 8 = 76, FLOPs
    /// 2*64*(16 + 36 + 16) = 8704; spatial SVD r = 2: 3*8*2 + 3*2*8 + 8 = 104, FLOPs 2*64*96 = 12288.
    func testPerLayerAccounting() throws {
        let model = randomisedUNet(UNetConfig(inputChannels: 1, baseFilters: 4, depth: 2), seed: 7)
        let (tuckerModel, tucker) = try ModelCompressor.compress(model: model, method: .tucker2(.fixed(2)), imageSize: 16)
        let t = try XCTUnwrap(tucker.layers.first { $0.name == "enc1_conv2" })
        XCTAssertEqual([t.parametersBefore, t.parametersAfter, t.flopsBefore, t.flopsAfter], [584, 76, 2 * 64 * 576, 8704])
        XCTAssertEqual([t.rank, t.outputRank], [2, 2])
        XCTAssertEqual(t.rankText, "2x2")
        XCTAssertTrue(t.factorised)
        XCTAssertEqual(t.breakEvenRank, (-16 + (256.0 + 4 * 9 * 576).squareRoot()) / 18, accuracy: 1e-12)
        let (spatialModel, spatial) = try ModelCompressor.compress(model: model, method: .spatialSVD(.fixed(2)), imageSize: 16)
        let s = try XCTUnwrap(spatial.layers.first { $0.name == "enc1_conv2" })
        XCTAssertEqual([s.parametersAfter, s.flopsAfter, s.fullRank], [104, 12288, 24])
        XCTAssertEqual(s.breakEvenRank, 576.0 / 48)
        XCTAssertNil(s.outputRank)
        // The totals are the models' own counts.
        XCTAssertEqual(tucker.parametersAfter, tuckerModel.parameterCount)
        XCTAssertEqual(spatial.flopsAfter, spatialModel.flopsPerImage(height: 16, width: 16))
        XCTAssertEqual(spatial.parametersBefore - spatial.parametersAfter,
                       spatial.layers.reduce(0) { $0 + $1.parametersBefore - $1.parametersAfter })
        XCTAssertTrue(spatialModel.encoders[1].conv2 is SpatialSVDConv2D)
        XCTAssertTrue(tuckerModel.encoders[1].conv2 is Tucker2Conv2D)
        XCTAssertTrue(tuckerModel.head is Conv2D, "the head stays full")
    }

    /// Past break-even the layer stays full (Tucker-2 at ranks 8x8 on 8 -> 8 costs more than the layer).
    func testBreakEvenKeepsLayersFull() throws {
        let model = randomisedUNet(UNetConfig(inputChannels: 1, baseFilters: 4, depth: 2), seed: 7)
        let (compressed, summary) = try ModelCompressor.compress(model: model, method: .tucker2(.fixed(64)), imageSize: 16)
        let d = try XCTUnwrap(summary.layers.first { $0.name == "enc1_conv2" })
        XCTAssertFalse(d.factorised)
        XCTAssertEqual(d.chosenOutputRank, 8)
        guard case .pastBreakEven? = d.skipReason else { return XCTFail("\(String(describing: d.skipReason))") }
        XCTAssertTrue(compressed.encoders[1].conv2 is Conv2D)
    }

    /// The same compression twice gives the same tensors, bit for bit, for every rule (VBMF included).
    func testCompressionIsDeterministic() throws {
        let model = randomisedUNet(UNetConfig(inputChannels: 1, baseFilters: 4, depth: 2), seed: 8)
        for method: CompressionMethod in [.tucker2(.vbmf), .tucker2(.energy(tau: 0.8)), .spatialSVD(.vbmf), .spatialSVD(.fraction(0.5))] {
            let a = try ModelCompressor.compress(model: model, method: method, imageSize: 16)
            let b = try ModelCompressor.compress(model: model, method: method, imageSize: 16)
            XCTAssertEqual(a.model.stateDictionary, b.model.stateDictionary, method.description)
            XCTAssertEqual(a.summary.layers.map(\.rank), b.summary.layers.map(\.rank))
            XCTAssertGreaterThan(a.summary.factorisedLayerCount, 0, method.description)
        }
    }
}
