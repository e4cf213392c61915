import CKernels
import XCTest
@testable import Engine

/// The small-GEMM kernel of Winograd's transform-domain products (`ckernels_winograd_small_gemm`)
/// against float64 products, on every instruction set this CPU runs; F(4x4, 3x3) and F(2x2, 3x3)
/// with it against the float64 direct convolution at 16-32 channels (helpers in `WinogradTests`);
/// and the narrow Winograd layers' routing through `Conv2D` (forward and dX by Winograd, dW direct).
extension WinogradTests {
    /// The kernel's instruction sets on this CPU (plain C always; AVX-512 where present).
    var smallGemmISAs: [DirectConvolution.ISA] { [.plain] + (Winograd.smallGemmSupported ? [.avx512] : []) }

    /// M[xi] = V[xi] U[xi] for `elements` products of `count` x `cs` by `cs` x `ct`, the buffers
    /// laid out as `Winograd.convolve` does with `chunk` rows each; M's rows past `count` start as NaN.
    func smallGemm(_ isa: DirectConvolution.ISA, v: [Float], u: [Float], count: Int, chunk: Int, cs: Int, ct: Int,
                   elements: Int) -> [Float] {
        var m = [Float](repeating: .nan, count: elements * chunk * ct)
        v.withUnsafeBufferPointer { vb in u.withUnsafeBufferPointer { ub in m.withUnsafeMutableBufferPointer { mb in
            ckernels_winograd_small_gemm(isa.rawValue, vb.baseAddress!, chunk * cs, count, cs, ub.baseAddress!, ct,
                                         mb.baseAddress!, chunk * ct, elements)
        } } }
        return m
    }

    func testSmallGemmMatchesFloat64Products() {
        // 16-64 channels as in the U-Nets' narrow layers, a cs off any vector width, and tile
        // counts that exercise the blocks of 12, 4 and 1 tiles.
        let shapes: [(cs: Int, ct: Int)] = [(16, 16), (32, 16), (16, 32), (32, 32), (64, 64), (20, 16), (3, 48)]
        let counts = [1, 5, 12, 29]
        let elements = 3, chunk = 31
        for isa in smallGemmISAs {
            for (index, s) in shapes.enumerated() {
                let v = randomTensor([elements * chunk * s.cs], seed: UInt64(900 + index)).storage
                let u = randomTensor([elements * s.cs * s.ct], seed: UInt64(950 + index)).storage
                for count in counts {
                    let m = smallGemm(isa, v: v, u: u, count: count, chunk: chunk, cs: s.cs, ct: s.ct, elements: elements)
                    var worst = 0.0
                    for xi in 0..<elements { for t in 0..<chunk { for co in 0..<s.ct {
                        let got = m[(xi * chunk + t) * s.ct + co]
                        guard t < count else {
                            XCTAssertTrue(got.isNaN, "\(isa.name) \(s) count \(count): row \(t) past the tiles written")
                            continue
                        }
                        var sum = 0.0, magnitude = 0.0
                        for k in 0..<s.cs {
                            let p = Double(v[(xi * chunk + t) * s.cs + k]) * Double(u[(xi * s.cs + k) * s.ct + co])
                            sum += p; magnitude += abs(p)
                        }
                        worst = max(worst, abs(Double(got) - sum) / magnitude)
                    } } }
                    // float32 rounding of a sum of at most 64 products: well under 64 * 2^-24.
                    XCTAssertLessThan(worst, 4e-6, "\(isa.name) \(s) count \(count)")
                }
            }
        }
    }

    func testSmallGemmRowsDoNotDependOnTheBlocking() {
        // A tile's products come out the same whether it sits in a block of 12, of 4 or alone:
        // each element is one sum over cs in order.
        // (20 x 48: the general loop; 16 x 32: channel counts compiled as constants.)
        let chunk = 29
        for (cs, ct) in [(20, 48), (16, 32)] { for isa in smallGemmISAs {
            let v = randomTensor([chunk * cs], seed: 960).storage, u = randomTensor([cs * ct], seed: 961).storage
            let all = smallGemm(isa, v: v, u: u, count: chunk, chunk: chunk, cs: cs, ct: ct, elements: 1)
            XCTAssertEqual(smallGemm(isa, v: v, u: u, count: chunk, chunk: chunk, cs: cs, ct: ct, elements: 1), all, isa.name)
            for t in [0, 11, 13, 24, 28] {
                let alone = smallGemm(isa, v: Array(v[(t * cs)...]), u: u, count: 1, chunk: chunk - t, cs: cs, ct: ct, elements: 1)
                XCTAssertEqual(Array(alone[0..<ct]), Array(all[(t * ct)..<((t + 1) * ct)]), "\(isa.name) \(cs)x\(ct) tile \(t)")
            }
        } }
    }

    /// `Winograd.convolve` by `tiling` with the small GEMM up to `smallGemm` channels (nil: off).
    func convolve(_ x: Tensor, kernel k: Tensor, bias: Tensor?, tiling: Winograd.Tiling, smallGemm: Int?,
                  workspace: Workspace = Workspace()) -> Tensor {
        let choices = engineChoices { $0.winogradSmallGemmMaximumChannels = smallGemm }
        let chosen = Winograd.smallGemmISA(sourceChannels: x.shape[3], targetChannels: k.shape[3], choices: choices)
        XCTAssertEqual(chosen, smallGemm != nil && Winograd.smallGemmSupported ? .avx512 : nil, "the product's path")
        if tiling.side == 4 { return winogradF4(x, kernel: k, bias: bias, relu: false, workspace: workspace, choices: choices) }
        return winograd(x, kernel: k, bias: bias, workspace: workspace, choices: choices)
    }

    func testNarrowLayersWithTheSmallGemmMatchDirectConvolutionWithinBound() {
        // 16-32 channels, a cs that is not a multiple of 16, odd sides (partial tiles), several images.
        let shapes: [(n: Int, h: Int, w: Int, cin: Int, cout: Int)] = [
            (2, 7, 5, 16, 16), (1, 13, 11, 32, 16), (1, 9, 9, 16, 32), (1, 6, 10, 20, 16), (3, 16, 17, 16, 16), (1, 5, 7, 32, 32),
        ]
        var worst = (f2: 0.0, f4: 0.0)
        for (index, s) in shapes.enumerated() {
            let x = randomTensor([s.n, s.h, s.w, s.cin], seed: UInt64(970 + index))
            let k = randomTensor([3, 3, s.cin, s.cout], seed: UInt64(980 + index), scale: 0.1)
            let b = randomTensor([s.cout], seed: UInt64(990 + index))
            let direct = directConvolution(x, kernel: k, bias: b)
            for tiling in [Winograd.Tiling.f2, .f4] {
                let y = convolve(x, kernel: k, bias: b, tiling: tiling, smallGemm: 64)
                let err = errorRelativeToScale(y.storage, direct)
                XCTAssertLessThan(err, tiling.side == 4 ? 2e-5 : 1e-5, "F(\(tiling.side)) shape \(s)")
                if tiling.side == 4 { worst.f4 = max(worst.f4, err) } else { worst.f2 = max(worst.f2, err) }
                // Deterministic: again, in other chunks, and on one thread, bit for bit (each
                // output's sum has one order whatever the split).
                XCTAssertEqual(convolve(x, kernel: k, bias: b, tiling: tiling, smallGemm: 64).storage, y.storage, "shape \(s)")
                let chunked = convolve(x, kernel: k, bias: b, tiling: tiling, smallGemm: 64,
                                       workspace: Workspace(capacityFloats: 64, minimumRows: 1))
                let threads = BLAS.threads
                BLAS.setThreads(1)
                let single = convolve(x, kernel: k, bias: b, tiling: tiling, smallGemm: 64)
                BLAS.setThreads(threads)
                if Winograd.smallGemmSupported {
                    XCTAssertEqual(chunked.storage, y.storage, "F(\(tiling.side)) chunked, shape \(s)")
                    XCTAssertEqual(single.storage, y.storage, "F(\(tiling.side)) one thread, shape \(s)")
                }
                // And within rounding of the cblas_sgemm path.
                let blas = convolve(x, kernel: k, bias: b, tiling: tiling, smallGemm: nil)
                XCTAssertLessThan(errorRelativeToScale(blas.storage, y.storage.map(Double.init)), tiling.side == 4 ? 2e-5 : 1e-5)
            }
        }
        print("Winograd with the small GEMM, 16-32 channels: worst error relative to the output's scale F(2x2) \(worst.f2), F(4x4) \(worst.f4)")
    }

    func testSmallGemmOnlyWhereChosen() {
        let choices = engineChoices { $0.winogradSmallGemmMaximumChannels = 32 }
        let on: DirectConvolution.ISA? = Winograd.smallGemmSupported ? .avx512 : nil
        XCTAssertEqual(Winograd.smallGemmISA(sourceChannels: 32, targetChannels: 16, choices: choices), on)
        XCTAssertNil(Winograd.smallGemmISA(sourceChannels: 16, targetChannels: 24, choices: choices), "not a multiple of 16 outputs")
        XCTAssertNil(Winograd.smallGemmISA(sourceChannels: 64, targetChannels: 32, choices: choices), "wider than the threshold")
        if ProcessInfo.processInfo.environment["RANKSWEEP_WINOGRAD_SMALL_GEMM"] == nil {
            XCTAssertEqual(EngineChoices.current.winogradSmallGemmMaximumChannels,
                           EngineChoices.current.winogradMinimumChannels == nil || on == nil ? nil : EngineChoices.winogradSmallGemmDefault)
        }
        if on != nil {
            XCTAssertTrue(choices.summary.contains("small GEMM up to 32 channels"), choices.summary)
        }
        let off = engineChoices { $0.winogradSmallGemmMaximumChannels = nil }
        XCTAssertNil(Winograd.smallGemmISA(sourceChannels: 16, targetChannels: 16, choices: off))
        XCTAssertFalse(off.summary.contains("small GEMM"))
    }

    func testNarrowLayersRunWinogradWithTheirWeightGradientDirect() throws {
        // 32 -> 32 with the default thresholds (unet-small's second level), and 16 -> 16 with
        // Winograd lowered to 16 channels (for A/B runs): F(4x4, 3x3) forward and dX with the
        // small GEMM, dW by the direct kernel; all three against float64.
        let defaults = EngineChoices.current
        for (c, threshold) in [(32, defaults.winogradMinimumChannels), (16, 16)] {
            let choices = engineChoices { $0.winogradMinimumChannels = threshold; $0.winogradF4MinimumChannels = threshold }
            let (n, h, w) = (2, WinogradF4.minimumSide + 1, WinogradF4.minimumSide + 2)
            let x = randomTensor([n, h, w, c], seed: 995)
            let k = randomTensor([3, 3, c, c], seed: 996, scale: 0.1)
            let layer = Conv2D(name: "narrow", kernel: k, bias: randomTensor([c], seed: 997))
            layer.choices = choices
            let smallGemm: DirectConvolution.ISA? = Winograd.smallGemmSupported ? .avx512 : nil
            XCTAssertEqual(layer.plan(height: h, width: w),
                           ConvolutionPlan(forward: .winogradF4, inputGradient: .winogradF4, weightGradient: .direct,
                                           directISA: defaults.directISA, forwardSmallGemm: smallGemm, inputGradientSmallGemm: smallGemm),
                           "\(c) channels")
            let y = layer.forward(x, training: true)
            XCTAssertLessThan(errorRelativeToScale(y.storage, directConvolution(x, kernel: k, bias: layer.bias!.value)), 2e-5, "\(c)")
            let dy = randomTensor(y.shape, seed: 998)
            layer.kernel.zeroGrad(); layer.bias!.zeroGrad()
            let dx = layer.backward(dy)
            var rotated = Tensor.zeros([3, 3, c, c])
            for ky in 0..<3 { for kx in 0..<3 { for ci in 0..<c { for co in 0..<c {
                rotated[2 - ky, 2 - kx, co, ci] = k[ky, kx, ci, co]
            } } } }
            XCTAssertLessThan(errorRelativeToScale(dx.storage, directConvolution(dy, kernel: rotated, bias: nil)), 2e-5, "\(c)")
            let direct = directWeightGradient(x, gradient: dy)
            XCTAssertLessThan(errorRelativeToScale(layer.kernel.grad.storage, direct.kernel), 1e-5, "\(c)")
            XCTAssertLessThan(errorRelativeToScale(layer.bias!.grad.storage, direct.bias), 1e-5, "\(c)")
        }
    }
}
