import Engine

/// Factorising one convolution `W` (HWIO `kh x kw x cin x cout`) into a `LowRankConv2D`.
///
/// `W` read as the `(kh*kw*cin) x cout` row-major matrix (no copy: HWIO is row-major in that order) is `U S Vᵀ`.
/// The first kernel is `U_r sqrt(S_r)` reshaped to `(kh, kw, cin, r)`, the second `sqrt(S_r) V_rᵀ`
/// reshaped to `(1, 1, r, cout)`; the bias moves to the second. Splitting `S` evenly keeps both
/// factors on the same scale, which suits fine-tuning both with one learning rate.
public enum Factorisation {
    /// The SVD of `conv`'s kernel as a `(kh*kw*cin) x cout` matrix.
    public static func decompose(_ conv: Conv2D) throws(SVDError) -> SingularValueDecomposition {
        try decompose(conv, strategy: .divideAndConquerWithFallback)
    }

    static func decompose(_ conv: Conv2D, strategy: SVD.Strategy) throws(SVDError) -> SingularValueDecomposition {
        let rows = conv.kernelHeight * conv.kernelWidth * conv.inChannels
        do {
            return try SVD.decompose(conv.kernel.value.storage, rows: rows, columns: conv.outChannels, strategy: strategy)
        } catch {
            throw SVDError(reason: "layer \(conv.name): \(error.reason)")
        }
    }

    /// The rank-`rank` factorised replacement of `conv`, from `svd` (the decomposition of its kernel).
    public static func factorise(_ conv: Conv2D, rank: Int, svd: SingularValueDecomposition,
                                 workspace: Workspace) -> LowRankConv2D {
        let m = conv.kernelHeight * conv.kernelWidth * conv.inChannels, n = conv.outChannels, k = svd.k
        precondition(svd.rows == m && svd.columns == n,
                     "Factorisation \(conv.name): decomposition is \(svd.rows) x \(svd.columns), kernel is \(m) x \(n)")
        precondition(rank >= 1 && rank <= k, "Factorisation \(conv.name): rank \(rank) outside 1...\(k)")
        let root = svd.singularValues.prefix(rank).map { $0.squareRoot() }
        // first (m x r) = U_r sqrt(S_r): column t of U scaled by sqrt(s_t).
        var first = [Float](repeating: 0, count: m * rank)
        for i in 0..<m {
            for t in 0..<rank { first[i * rank + t] = svd.u[i * k + t] * root[t] }
        }
        // second (r x n) = sqrt(S_r) V_rᵀ: row t of Vᵀ scaled by sqrt(s_t).
        var second = [Float](repeating: 0, count: rank * n)
        for t in 0..<rank {
            for j in 0..<n { second[t * n + j] = root[t] * svd.vt[t * n + j] }
        }
        return LowRankConv2D(
            name: conv.name,
            firstKernel: Tensor(shape: [conv.kernelHeight, conv.kernelWidth, conv.inChannels, rank], storage: first),
            secondKernel: Tensor(shape: [1, 1, rank, n], storage: second),
            bias: conv.bias?.value, workspace: workspace)
    }

    /// The rank at which a factorised pair has as many weights as the full kernel:
    /// `b = rows*columns / (rows + columns)` with `rows = kh*kw*cin`, `columns = cout`.
    public static func breakEvenRank(rows: Int, columns: Int) -> Double {
        Double(rows * columns) / Double(rows + columns)
    }

    /// True when a rank-`rank` pair has strictly fewer weights than the full kernel,
    /// `rank * (rows + columns) < rows * columns`, compared exactly in integers. (Bias is the same
    /// on both sides and does not enter.)
    public static func savesParameters(rank: Int, rows: Int, columns: Int) -> Bool {
        rank * (rows + columns) < rows * columns
    }
}
