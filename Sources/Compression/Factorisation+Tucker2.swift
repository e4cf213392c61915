import Engine

/// Tucker-2 of one convolution `W` (HWIO `kh x kw x cin x cout`) by HOSVD into a `Tucker2Conv2D`.
///
/// The two channel modes are decomposed, the spatial ones kept: `U1` (cin x r1) holds the leading
/// left singular vectors of the input-channel unfolding `cin x (kh*kw*cout)`, `U2` (cout x r2) those
/// of the output-channel unfolding `cout x (kh*kw*cin)` — the transpose of the matrix SVD and ARSVD
/// decompose, so its singular vectors are that SVD's right ones and cost nothing more. The core is
/// `G = W ×_cin U1ᵀ ×_cout U2ᵀ` (`kh x kw x r1 x r2`); the layer runs `U1`, `G`, `U2ᵀ`.
///
/// No HOOI iterations: HOSVD is exact at full rank and quasi-optimal (within sqrt(2) of the best
/// Tucker-2 error), the relative gain of HOOI on trained conv kernels is small next to what
/// fine-tuning recovers, and each iteration would cost two more SVDs per layer on every job.
extension Factorisation {
    /// The SVD of `conv`'s input-channel unfolding, the `cin x (kh*kw*cout)` matrix `A[i, (h,w,o)] = W[h,w,i,o]`.
    public static func decomposeInputChannels(_ conv: Conv2D) throws(SVDError) -> SingularValueDecomposition {
        let (hw, cin, cout) = (conv.kernelHeight * conv.kernelWidth, conv.inChannels, conv.outChannels)
        let w = conv.kernel.value.storage
        var a = [Float](repeating: 0, count: cin * hw * cout)
        for p in 0..<hw { for i in 0..<cin { for o in 0..<cout {
            a[i * hw * cout + p * cout + o] = w[(p * cin + i) * cout + o]
        } } }
        do {
            return try SVD.decompose(a, rows: cin, columns: hw * cout)
        } catch {
            throw SVDError(reason: "layer \(conv.name): \(error.reason)")
        }
    }

    /// The Tucker-2 replacement of `conv` with ranks `r1` (input channels) and `r2` (output channels),
    /// from `inputSVD` (`decomposeInputChannels`) and `outputSVD` (`decompose`), and the fraction of
    /// the kernel's energy it keeps (`‖G‖² / ‖W‖²`: the projections are orthogonal).
    public static func tucker2(_ conv: Conv2D, inputRank r1: Int, outputRank r2: Int, inputSVD: SingularValueDecomposition,
                               outputSVD: SingularValueDecomposition, workspace: Workspace) -> (layer: Tucker2Conv2D, energyKept: Double) {
        let (hw, cin, cout) = (conv.kernelHeight * conv.kernelWidth, conv.inChannels, conv.outChannels)
        precondition(inputSVD.rows == cin && inputSVD.columns == hw * cout && outputSVD.rows == hw * cin && outputSVD.columns == cout,
                     "Tucker-2 \(conv.name): decompositions do not match the kernel")
        precondition(r1 >= 1 && r1 <= inputSVD.k && r2 >= 1 && r2 <= outputSVD.k,
                     "Tucker-2 \(conv.name): ranks \(r1), \(r2) outside 1...\(inputSVD.k), 1...\(outputSVD.k)")
        let k1 = inputSVD.k
        // U1 (cin x r1) is the first kernel as stored; U2ᵀ (r2 x cout) is the first r2 rows of Vᵀ.
        var first = [Float](repeating: 0, count: cin * r1)
        for i in 0..<cin { for a in 0..<r1 { first[i * r1 + a] = inputSVD.u[i * k1 + a] } }
        let last = Array(outputSVD.vt.prefix(r2 * cout))
        let w = conv.kernel.value.storage
        var core = [Float](repeating: 0, count: hw * r1 * r2)
        var kernelEnergy = 0.0, coreEnergy = 0.0
        var t = [Double](repeating: 0, count: r1 * cout)
        for p in 0..<hw {
            // T (r1 x cout) = U1ᵀ W_p, then G_p (r1 x r2) = T U2.
            for i in 0 ..< r1 * cout { t[i] = 0 }
            for i in 0..<cin {
                for o in 0..<cout {
                    let x = Double(w[(p * cin + i) * cout + o])
                    kernelEnergy += x * x
                    for a in 0..<r1 { t[a * cout + o] += Double(first[i * r1 + a]) * x }
                }
            }
            for a in 0..<r1 {
                for b in 0..<r2 {
                    var sum = 0.0
                    for o in 0..<cout { sum += t[a * cout + o] * Double(last[b * cout + o]) }
                    core[(p * r1 + a) * r2 + b] = Float(sum)
                    coreEnergy += sum * sum
                }
            }
        }
        let layer = Tucker2Conv2D(
            name: conv.name,
            firstKernel: Tensor(shape: [1, 1, cin, r1], storage: first),
            coreKernel: Tensor(shape: [conv.kernelHeight, conv.kernelWidth, r1, r2], storage: core),
            lastKernel: Tensor(shape: [1, 1, r2, cout], storage: last),
            bias: conv.bias?.value, workspace: workspace)
        return (layer, kernelEnergy > 0 ? min(1, coreEnergy / kernelEnergy) : 1)
    }

    /// Weights of a Tucker-2 layer's three kernels (bias excluded): `cin r1 + kh kw r1 r2 + r2 cout`.
    public static func tucker2Weights(kernelArea: Int, inChannels: Int, outChannels: Int, inputRank r1: Int, outputRank r2: Int) -> Int {
        inChannels * r1 + kernelArea * r1 * r2 + r2 * outChannels
    }

    /// The equal rank `r = r1 = r2` at which Tucker-2 has as many weights as the full kernel, the
    /// positive root of `kh kw r² + (cin + cout) r - kh kw cin cout = 0`.
    public static func tucker2BreakEvenRank(kernelArea: Int, inChannels: Int, outChannels: Int) -> Double {
        let (a, b, c) = (Double(kernelArea), Double(inChannels + outChannels), Double(kernelArea * inChannels * outChannels))
        return (-b + (b * b + 4 * a * c).squareRoot()) / (2 * a)
    }
}
