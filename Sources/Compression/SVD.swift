import CBLAS
import Engine

/// A thin singular value decomposition `A = U diag(s) Vᵀ` of a row-major `rows x columns` matrix,
/// with `k = min(rows, columns)`: `u` is `rows x k`, `vt` is `k x columns` (both row-major), and the
/// singular values are in descending order.
public struct SingularValueDecomposition: Sendable, Equatable {
    /// Which LAPACK driver produced a decomposition.
    public enum Driver: String, Codable, Sendable {
        /// `sgesdd` (divide and conquer): the fast default.
        case gesdd
        /// `sgesvd` (QR iteration): slower, used when `sgesdd` does not converge.
        case gesvd
    }

    public let rows: Int
    public let columns: Int
    /// `rows x k`, row-major, orthonormal columns.
    public let u: [Float]
    /// `k` values, descending, non-negative.
    public let singularValues: [Float]
    /// `k x columns`, row-major, orthonormal rows.
    public let vt: [Float]
    public let driver: Driver

    public var k: Int { singularValues.count }

    /// `s_i²` summed from the first up to each index, in Double: `cumulativeEnergy[i]` holds
    /// `s_1² + … + s_(i+1)²`. The last entry is the total, so the fraction at full rank is exactly 1.
    public var cumulativeEnergy: [Double] {
        var sum = 0.0
        return singularValues.map { sum += Double($0) * Double($0); return sum }
    }

    /// Fraction of the squared Frobenius norm that the leading `rank` singular values hold
    /// (`0 ... 1`; 1 for a zero matrix, where nothing is lost).
    public func energyFraction(rank: Int) -> Double {
        precondition(rank >= 0 && rank <= k, "SVD: rank \(rank) outside 0...\(k)")
        let cumulative = cumulativeEnergy
        guard let total = cumulative.last, total > 0 else { return 1 }
        return rank == 0 ? 0 : cumulative[rank - 1] / total
    }

    /// The numerical rank: singular values above `s_max * max(rows, columns) * ε(Float)` count, as
    /// numpy's `matrix_rank` and MATLAB's `rank` do. Values below that tolerance are at the level of
    /// float32 rounding of the input and carry no information. A zero matrix has rank 0.
    public var numericalRank: Int {
        guard let largest = singularValues.first, largest > 0 else { return 0 }
        let tolerance = largest * Float(max(rows, columns)) * Float.ulpOfOne
        return singularValues.filter { $0 > tolerance }.count
    }

    /// `U_r diag(s_r) V_rᵀ` as a row-major `rows x columns` matrix (Double accumulation).
    public func reconstruction(rank: Int) -> [Float] {
        precondition(rank >= 0 && rank <= k, "SVD: rank \(rank) outside 0...\(k)")
        var a = [Float](repeating: 0, count: rows * columns)
        for i in 0..<rows {
            for j in 0..<columns {
                var sum = 0.0
                for t in 0..<rank { sum += Double(u[i * k + t]) * Double(singularValues[t]) * Double(vt[t * columns + j]) }
                a[i * columns + j] = Float(sum)
            }
        }
        return a
    }
}

/// Why a decomposition could not be computed. Thrown: a model with non-finite weights is a user's
/// problem (a diverged training run), not a crash.
public struct SVDError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public var description: String { reason }
}

/// Thin SVD through LAPACKE.
///
/// `sgesdd` (divide and conquer, `jobz = 'S'`) is tried first; when it reports no convergence
/// (`info > 0`) the matrix is decomposed again with `sgesvd` (QR iteration), which converges in
/// cases where divide and conquer does not. `info < 0` means an argument was wrong: a bug here,
/// so it stops the program.
public enum SVD {
    /// How `decompose` picks its driver. `.forceFallback` exists so tests can run the `sgesvd` path,
    /// which real kernels essentially never reach.
    enum Strategy: Sendable {
        case divideAndConquerWithFallback
        case forceFallback
    }

    /// Decomposes the row-major `rows x columns` matrix `a`.
    public static func decompose(_ a: [Float], rows: Int, columns: Int) throws(SVDError) -> SingularValueDecomposition {
        try decompose(a, rows: rows, columns: columns, strategy: .divideAndConquerWithFallback)
    }

    static func decompose(_ a: [Float], rows: Int, columns: Int,
                          strategy: Strategy) throws(SVDError) -> SingularValueDecomposition {
        precondition(rows > 0 && columns > 0 && a.count == rows * columns,
                     "SVD: matrix \(rows) x \(columns) needs \(rows * columns) elements, got \(a.count)")
        // LAPACKE's NaN check would report a non-finite input as a bad argument (info < 0).
        guard a.allSatisfy(\.isFinite) else {
            throw SVDError(reason: "matrix \(rows) x \(columns) has NaN or infinite entries")
        }
        if strategy == .divideAndConquerWithFallback, let result = gesdd(a, rows: rows, columns: columns) {
            return result
        }
        return try gesvd(a, rows: rows, columns: columns)
    }

    /// `sgesdd`, or nil when it does not converge.
    private static func gesdd(_ a: [Float], rows m: Int, columns n: Int) -> SingularValueDecomposition? {
        let k = min(m, n)
        var work = a  // sgesdd overwrites its input
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: m * k)
        var vt = [Float](repeating: 0, count: k * n)
        // LAPACK cannot be split from outside: it gets OpenBLAS's own threads for the call.
        let info = BLAS.withLibraryThreads {
            LAPACKE_sgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n),
                           &work, Int32(n), &s, &u, Int32(k), &vt, Int32(n))
        }
        precondition(info >= 0, "LAPACKE_sgesdd: argument \(-info) is invalid (matrix \(m) x \(n))")
        guard info == 0 else { return nil }
        return SingularValueDecomposition(rows: m, columns: n, u: u, singularValues: s, vt: vt, driver: .gesdd)
    }

    private static func gesvd(_ a: [Float], rows m: Int, columns n: Int) throws(SVDError) -> SingularValueDecomposition {
        let k = min(m, n)
        var work = a
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: m * k)
        var vt = [Float](repeating: 0, count: k * n)
        var superb = [Float](repeating: 0, count: max(1, k - 1))
        let jobS = CChar(UInt8(ascii: "S"))
        let info = BLAS.withLibraryThreads {
            LAPACKE_sgesvd(LAPACK_ROW_MAJOR, jobS, jobS, Int32(m), Int32(n),
                           &work, Int32(n), &s, &u, Int32(k), &vt, Int32(n), &superb)
        }
        precondition(info >= 0, "LAPACKE_sgesvd: argument \(-info) is invalid (matrix \(m) x \(n))")
        guard info == 0 else {
            throw SVDError(reason: "SVD of a \(m) x \(n) matrix did not converge (sgesdd and sgesvd, \(info) superdiagonals left)")
        }
        return SingularValueDecomposition(rows: m, columns: n, u: u, singularValues: s, vt: vt, driver: .gesvd)
    }
}
