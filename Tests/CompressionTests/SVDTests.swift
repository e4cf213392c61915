import Foundation
import XCTest
@testable import Compression
@testable import Engine

final class SVDTests: XCTestCase {
    /// U S Vᵀ reproduces A, U and V have orthonormal columns, values descend (both shapes: tall, wide).
    func testDecompositionReconstructsAndIsOrthonormal() throws {
        for (m, n) in [(27, 8), (6, 15)] {
            let a = randomTensor([m, n], seed: UInt64(m * n)).storage
            let svd = try SVD.decompose(a, rows: m, columns: n)
            XCTAssertEqual(svd.driver, .gesdd)
            XCTAssertEqual(svd.k, min(m, n))
            XCTAssertEqual(svd.singularValues, svd.singularValues.sorted(by: >))
            let worst = zip(svd.reconstruction(rank: svd.k), a).map { abs($0 - $1) }.max()!
            print("SVD \(m)x\(n): max reconstruction error \(worst)")
            XCTAssertLessThan(worst, 1e-5)
            let k = svd.k
            for p in 0..<k { for q in 0..<k {
                var uu = 0.0, vv = 0.0
                for i in 0..<m { uu += Double(svd.u[i * k + p]) * Double(svd.u[i * k + q]) }
                for j in 0..<n { vv += Double(svd.vt[p * n + j]) * Double(svd.vt[q * n + j]) }
                XCTAssertEqual(uu, p == q ? 1 : 0, accuracy: 1e-5)
                XCTAssertEqual(vv, p == q ? 1 : 0, accuracy: 1e-5)
            } }
            XCTAssertEqual(svd.energyFraction(rank: k), 1)
            XCTAssertEqual(svd.numericalRank, k)
        }
    }

    /// The sgesvd fallback gives the same singular values and the same reconstruction at every rank.
    func testFallbackMatchesDivideAndConquer() throws {
        let (m, n) = (36, 12)
        let a = randomTensor([m, n], seed: 41).storage
        let dc = try SVD.decompose(a, rows: m, columns: n, strategy: .divideAndConquerWithFallback)
        let qr = try SVD.decompose(a, rows: m, columns: n, strategy: .forceFallback)
        XCTAssertEqual(dc.driver, .gesdd)
        XCTAssertEqual(qr.driver, .gesvd)
        var worstS: Float = 0, worstR: Float = 0
        for (x, y) in zip(dc.singularValues, qr.singularValues) { worstS = max(worstS, abs(x - y)) }
        for r in [1, 4, 12] {
            for (x, y) in zip(dc.reconstruction(rank: r), qr.reconstruction(rank: r)) { worstR = max(worstR, abs(x - y)) }
        }
        print("sgesdd vs sgesvd: singular values differ by \(worstS), reconstructions by \(worstR)")
        XCTAssertLessThan(worstS, 1e-5)
        XCTAssertLessThan(worstR, 1e-5)
        // And the factorised convolution built from the fallback reproduces the layer's kernel.
        let conv = Conv2D(name: "c", kernel: Tensor(shape: [3, 3, 4, 12], storage: a), bias: nil)
        let pair = Factorisation.factorise(conv, rank: 12, svd: try Factorisation.decompose(conv, strategy: .forceFallback),
                                           workspace: Workspace())
        let product = matmul(pair.first.kernel.value.storage, pair.second.kernel.value.storage, m: m, k: 12, n: n)
        XCTAssertLessThan(frobenius(product, minus: a), 1e-5)
    }

    func testNumericalRankOfRankDeficientMatrix() throws {
        // A (20 x 6) of rank 3: product of (20 x 3) and (3 x 6).
        let b = randomTensor([20, 3], seed: 1).storage, c = randomTensor([3, 6], seed: 2).storage
        let a = matmul(b, c, m: 20, k: 3, n: 6).map(Float.init)
        let svd = try SVD.decompose(a, rows: 20, columns: 6)
        print("rank-3 matrix singular values: \(svd.singularValues)")
        XCTAssertEqual(svd.numericalRank, 3)
        XCTAssertEqual(CompressionMethod.svd(rank: 5).rank(for: svd), 3)
        XCTAssertEqual(try SVD.decompose([Float](repeating: 0, count: 6), rows: 2, columns: 3).numericalRank, 0)
    }

    func testNonFiniteInputIsAnErrorNotACrash() {
        var a = randomTensor([4, 3], seed: 3).storage
        a[5] = .nan
        XCTAssertThrowsError(try SVD.decompose(a, rows: 4, columns: 3)) { error in
            XCTAssertTrue("\(error)".contains("NaN"), "\(error)")
        }
    }
}
