import Foundation
import XCTest
@testable import Compression
@testable import Engine

final class FactorisationTests: XCTestCase {
    /// At full rank the pair computes the original layer's output (max abs error < 1e-4).
    func testFullRankPairReproducesTheLayer() throws {
        for (k, cin, cout) in [(3, 5, 7), (3, 16, 8), (1, 6, 4), (5, 2, 3)] {
            let conv = Conv2D(name: "conv", kernel: randomTensor([k, k, cin, cout], seed: UInt64(cin * 10 + cout), scale: 0.5),
                              bias: randomTensor([cout], seed: 3, scale: 0.2))
            let svd = try Factorisation.decompose(conv)
            let pair = Factorisation.factorise(conv, rank: svd.k, svd: svd, workspace: Workspace())
            XCTAssertEqual(pair.first.kernel.value.shape, [k, k, cin, svd.k])
            XCTAssertEqual(pair.second.kernel.value.shape, [1, 1, svd.k, cout])
            XCTAssertEqual(pair.second.bias?.value, conv.bias?.value)
            XCTAssertNil(pair.first.bias)
            let x = randomTensor([2, 9, 7, cin], seed: 17)
            let error = pair.forward(x, training: false).maxAbsDifference(conv.forward(x, training: false))
            print("full-rank pair \(k)x\(k) \(cin)->\(cout): max abs error \(error)")
            XCTAssertLessThan(error, 1e-4)
        }
    }

    /// ‖W − first·second‖_F falls strictly as r grows and equals sqrt(Σ_{i>r} s_i²).
    func testReconstructionErrorFallsAndMatchesDiscardedEnergy() throws {
        let (cin, cout) = (6, 10)
        let m = 9 * cin
        let conv = Conv2D(name: "conv", kernel: randomTensor([3, 3, cin, cout], seed: 5), bias: nil)
        let svd = try Factorisation.decompose(conv)
        let norm = conv.kernel.value.storage.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        var previous = Double.infinity
        for r in 1...svd.k {
            let pair = Factorisation.factorise(conv, rank: r, svd: svd, workspace: Workspace())
            let product = matmul(pair.first.kernel.value.storage, pair.second.kernel.value.storage, m: m, k: r, n: cout)
            let error = frobenius(product, minus: conv.kernel.value.storage)
            let expected = svd.singularValues.dropFirst(r).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            print("rank \(r): ‖W - AB‖_F = \(error), sqrt(discarded s²) = \(expected)")
            // float32 factors: absolute noise about 1e-7 of ‖W‖ per entry.
            XCTAssertEqual(error, expected, accuracy: 2e-6 * norm + 1e-4 * expected)
            XCTAssertLessThan(error, previous)
            previous = error
        }
        XCTAssertLessThan(previous, 2e-6 * norm)
    }

    /// ARSVD on a kernel W = U diag(s) Vᵀ with chosen s: energy fractions are
    /// 0.7393, 0.9242, 0.9907, 0.9981, 0.99993, 1, so each tau below has one clear answer.
    func testARSVDPicksTheRankOfKnownSpectra() throws {
        let s: [Float] = [10, 5, 3, 1, 0.5, 0.1]
        let (kh, cin, cout) = (3, 4, 6)
        let m = kh * kh * cin, k = s.count
        let u = try randomOrthonormalColumns(rows: m, columns: k, seed: 11)
        let v = try randomOrthonormalColumns(rows: cout, columns: k, seed: 12)
        var w = [Float](repeating: 0, count: m * cout)
        for i in 0..<m { for j in 0..<cout {
            var sum = 0.0
            for t in 0..<k { sum += Double(u[i * k + t]) * Double(s[t]) * Double(v[j * k + t]) }
            w[i * cout + j] = Float(sum)
        } }
        let conv = Conv2D(name: "known", kernel: Tensor(shape: [kh, kh, cin, cout], storage: w), bias: nil)
        let svd = try Factorisation.decompose(conv)
        for (a, b) in zip(svd.singularValues, s) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        let expectations: [(tau: Double, rank: Int)] = [
            (0.5, 1), (0.739, 1), (0.74, 2), (0.9, 2), (0.95, 3), (0.99, 3), (0.995, 4),
            (0.9999, 5), (1.0, 6),
        ]
        for (tau, rank) in expectations {
            XCTAssertEqual(CompressionMethod.arsvd(tau: tau).rank(for: svd), rank, "tau \(tau)")
        }
        // The energy reported for the chosen rank is the spectrum's.
        let total = s.reduce(0.0) { $0 + Double($1 * $1) }
        XCTAssertEqual(svd.energyFraction(rank: 3), (100 + 25 + 9) / total, accuracy: 1e-6)
    }

    /// The break-even rule compares exactly: equality keeps the layer full.
    func testBreakEvenRuleIsExact() {
        // 2 x 2 kernel matrix: a rank-1 pair has 4 weights, the same as the kernel.
        XCTAssertFalse(Factorisation.savesParameters(rank: 1, rows: 2, columns: 2))
        // 27 x 8 (3x3, 3 -> 8): break-even 216/35 = 6.17.
        XCTAssertTrue(Factorisation.savesParameters(rank: 6, rows: 27, columns: 8))
        XCTAssertFalse(Factorisation.savesParameters(rank: 7, rows: 27, columns: 8))
        // 72 x 8: break-even exactly 7.2; 1152 x 128: 128*1152/1280 = 115.2.
        XCTAssertTrue(Factorisation.savesParameters(rank: 7, rows: 72, columns: 8))
        XCTAssertTrue(Factorisation.savesParameters(rank: 115, rows: 1152, columns: 128))
        XCTAssertFalse(Factorisation.savesParameters(rank: 116, rows: 1152, columns: 128))
        // 4 x 4: break-even exactly 2, rank 2 is not a saving.
        XCTAssertFalse(Factorisation.savesParameters(rank: 2, rows: 4, columns: 4))
        XCTAssertEqual(Factorisation.breakEvenRank(rows: 72, columns: 8), 7.2, accuracy: 1e-12)
    }

    func testMethodValidationAndParsing() throws {
        for bad in [CompressionMethod.svd(rank: 0), .svd(rank: -3), .arsvd(tau: 0), .arsvd(tau: 1.5), .arsvd(tau: -0.1), .arsvd(tau: .nan)] {
            XCTAssertThrowsError(try bad.validate(), "\(bad)") { error in print("rejected: \(error)") }
        }
        XCTAssertNoThrow(try CompressionMethod.arsvd(tau: 1).validate())
        XCTAssertEqual(try CompressionMethod(name: "svd", rank: 50, tau: nil), .svd(rank: 50))
        XCTAssertEqual(try CompressionMethod(name: "ARSVD", rank: nil, tau: 0.9), .arsvd(tau: 0.9))
        XCTAssertThrowsError(try CompressionMethod(name: "svd", rank: nil, tau: nil))
        XCTAssertThrowsError(try CompressionMethod(name: "tucker", rank: 3, tau: nil))
        XCTAssertThrowsError(try CompressionMethod(name: "arsvd", rank: nil, tau: 2)) { error in
            XCTAssertEqual("\(error)", "tau must be in (0, 1], got 2.0")
        }
        let json = try JSONEncoder().encode(CompressionMethod.arsvd(tau: 0.85))
        XCTAssertEqual(String(decoding: json, as: UTF8.self).contains("\"method\":\"arsvd\""), true)
        XCTAssertEqual(try JSONDecoder().decode(CompressionMethod.self, from: json), .arsvd(tau: 0.85))
        XCTAssertThrowsError(try JSONDecoder().decode(CompressionMethod.self, from: Data(#"{"method":"svd","rank":0}"#.utf8)))
    }
}
