import Engine

/// Spatial SVD of one convolution (AIMET's) into a `SpatialSVDConv2D`.
///
/// `W` (HWIO `kh x kw x cin x cout`) read as the `(kh*cin) x (kw*cout)` matrix
/// `M[(h,i), (w,o)] = W[h,w,i,o]` is `U S Vᵀ`; the vertical `kh x 1` kernel is `U_r sqrt(S_r)`, the
/// horizontal `1 x kw` one `sqrt(S_r) V_rᵀ`, the bias moves to the horizontal one. At full rank the
/// pair reproduces the layer, padding included: the horizontal convolution's zero columns are the
/// vertical one's output on the full layer's zero columns.
extension Factorisation {
    /// The SVD of `conv`'s kernel as the `(kh*cin) x (kw*cout)` matrix.
    public static func decomposeSpatially(_ conv: Conv2D) throws(SVDError) -> SingularValueDecomposition {
        let (kh, kw, cin, cout) = (conv.kernelHeight, conv.kernelWidth, conv.inChannels, conv.outChannels)
        let w = conv.kernel.value.storage
        var m = [Float](repeating: 0, count: kh * cin * kw * cout)
        for h in 0..<kh { for x in 0..<kw { for i in 0..<cin { for o in 0..<cout {
            m[(h * cin + i) * kw * cout + x * cout + o] = w[((h * kw + x) * cin + i) * cout + o]
        } } } }
        do {
            return try SVD.decompose(m, rows: kh * cin, columns: kw * cout)
        } catch {
            throw SVDError(reason: "layer \(conv.name): \(error.reason)")
        }
    }

    /// The rank-`rank` spatial-SVD replacement of `conv`, from `svd` (`decomposeSpatially`).
    public static func spatialSVD(_ conv: Conv2D, rank: Int, svd: SingularValueDecomposition, workspace: Workspace) -> SpatialSVDConv2D {
        let (kh, kw, cin, cout) = (conv.kernelHeight, conv.kernelWidth, conv.inChannels, conv.outChannels)
        precondition(svd.rows == kh * cin && svd.columns == kw * cout, "spatial SVD \(conv.name): decomposition does not match the kernel")
        precondition(rank >= 1 && rank <= svd.k, "spatial SVD \(conv.name): rank \(rank) outside 1...\(svd.k)")
        let k = svd.k
        let root = svd.singularValues.prefix(rank).map { $0.squareRoot() }
        // vertical (kh, 1, cin, r): row (h, i) of U_r sqrt(S_r), HWIO order is that row order.
        var vertical = [Float](repeating: 0, count: kh * cin * rank)
        for row in 0 ..< kh * cin { for t in 0..<rank { vertical[row * rank + t] = svd.u[row * k + t] * root[t] } }
        // horizontal (1, kw, r, cout): sqrt(s_t) Vᵀ[t, (w, o)].
        var horizontal = [Float](repeating: 0, count: kw * rank * cout)
        for x in 0..<kw { for t in 0..<rank { for o in 0..<cout {
            horizontal[(x * rank + t) * cout + o] = root[t] * svd.vt[t * kw * cout + x * cout + o]
        } } }
        return SpatialSVDConv2D(
            name: conv.name,
            verticalKernel: Tensor(shape: [kh, 1, cin, rank], storage: vertical),
            horizontalKernel: Tensor(shape: [1, kw, rank, cout], storage: horizontal),
            bias: conv.bias?.value, workspace: workspace)
    }

    /// The rank at which a spatial-SVD pair has as many weights as the full kernel:
    /// `kh kw cin cout / (kh cin + kw cout)`.
    public static func spatialSVDBreakEvenRank(_ conv: Conv2D) -> Double {
        let (vertical, horizontal) = (conv.kernelHeight * conv.inChannels, conv.kernelWidth * conv.outChannels)
        return Double(vertical * horizontal) / Double(vertical + horizontal)
    }

    /// True when a rank-`rank` spatial-SVD pair has strictly fewer weights than the full kernel,
    /// compared exactly in integers (bias excluded: the same on both sides).
    public static func spatialSVDSavesParameters(rank: Int, _ conv: Conv2D) -> Bool {
        let (vertical, horizontal) = (conv.kernelHeight * conv.inChannels, conv.kernelWidth * conv.outChannels)
        return rank * (vertical + horizontal) < vertical * horizontal
    }
}
