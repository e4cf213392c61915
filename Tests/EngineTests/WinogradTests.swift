import XCTest
@testable import Engine

/// Winograd F(2x2, 3x3) against the direct convolution (float64 loops and the engine's own
/// row-im2col path): its documented error bound, its input gradient, and independence from the
/// chunking and the thread count.
final class WinogradTests: XCTestCase {
    /// y = conv3x3(x, k) + b in float64, "same" padding.
    func directConvolution(_ x: Tensor, kernel k: Tensor, bias: Tensor?) -> [Double] {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.shape[3])
        var y = [Double](repeating: 0, count: n * h * w * cout)
        for b in 0..<n { for i in 0..<h { for j in 0..<w { for co in 0..<cout {
            var s = Double(bias?.storage[co] ?? 0)
            for dy in 0..<3 { for dx in 0..<3 {
                let si = i + dy - 1, sj = j + dx - 1
                guard si >= 0, si < h, sj >= 0, sj < w else { continue }
                for ci in 0..<cin { s += Double(x[b, si, sj, ci]) * Double(k[dy, dx, ci, co]) }
            } }
            y[((b * h + i) * w + j) * cout + co] = s
        } } } }
        return y
    }

    /// Largest |a - b| over the largest |b|.
    func errorRelativeToScale(_ a: [Float], _ b: [Double]) -> Double {
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / scale
    }

    func winograd(_ x: Tensor, kernel k: Tensor, bias: Tensor?, relu: Bool = false, workspace: Workspace = Workspace(),
                  choices: EngineChoices = .current) -> Tensor {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.shape[3])
        var y = Tensor.uninitialized([n, h, w, cout])
        let matrices = k.storage.withUnsafeBufferPointer { Winograd.kernelMatrices($0.baseAddress!, cin: cin, cout: cout) }
        x.storage.withUnsafeBufferPointer { xb in matrices.withUnsafeBufferPointer { mb in
            (bias?.storage ?? []).withUnsafeBufferPointer { bb in y.storage.withUnsafeMutableBufferPointer { yb in
                Winograd.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin, matrices: mb.baseAddress!, targetChannels: cout,
                                  bias: bias == nil ? nil : bb.baseAddress!, relu: relu, into: yb.baseAddress!,
                                  smallGemm: Winograd.smallGemmISA(sourceChannels: cin, targetChannels: cout, choices: choices),
                                  workspace: workspace)
            } }
        } }
        return y
    }

    func testMatchesDirectConvolutionWithinBound() {
        // Odd and even sides (partial tiles at the bottom and right), one-pixel images, several
        // images per batch, 32-256 channels as in the U-Nets' wide layers.
        let shapes: [(n: Int, h: Int, w: Int, cin: Int, cout: Int)] = [
            (2, 7, 5, 32, 32), (1, 1, 1, 64, 32), (3, 8, 8, 32, 64), (1, 6, 9, 256, 128), (1, 6, 10, 128, 256),
            (1, 5, 7, 36, 27), (2, 3, 4, 5, 3),  // channels off the 8-wide path
        ]
        var worst = 0.0
        for (index, s) in shapes.enumerated() {
            let x = randomTensor([s.n, s.h, s.w, s.cin], seed: UInt64(10 + index))
            let k = randomTensor([3, 3, s.cin, s.cout], seed: UInt64(20 + index), scale: 0.1)
            let b = index % 2 == 0 ? randomTensor([s.cout], seed: UInt64(30 + index)) : nil
            let y = winograd(x, kernel: k, bias: b)
            let err = errorRelativeToScale(y.storage, directConvolution(x, kernel: k, bias: b))
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-5, "shape \(s)")
            // The fused ReLU is exactly the clamp of the same sums.
            XCTAssertEqual(winograd(x, kernel: k, bias: b, relu: true).storage, y.storage.map { max($0, 0) }, "shape \(s)")
        }
        print("Winograd F(2x2,3x3): worst error relative to the output's scale \(worst)")
    }

    func testDeterministicAndCloseAcrossChunkingAndThreads() {
        let x = randomTensor([3, 10, 11, 32], seed: 1)
        let k = randomTensor([3, 3, 32, 40], seed: 2, scale: 0.1)
        let b = randomTensor([40], seed: 3)
        let reference = winograd(x, kernel: k, bias: b, relu: true)
        let direct = directConvolution(x, kernel: k, bias: b).map { max($0, 0) }
        XCTAssertLessThan(errorRelativeToScale(reference.storage, direct), 1e-5)
        XCTAssertTrue(reference.storage.allSatisfy { $0 >= 0 })
        // Deterministic for a given split; another split (one tile per GEMM, one thread) changes
        // only the GEMMs' row counts, which OpenBLAS may sum in another order (its small-matrix
        // kernels): within float32 rounding.
        XCTAssertTrue(winograd(x, kernel: k, bias: b, relu: true).storage == reference.storage, "same split, same result")
        let chunked = winograd(x, kernel: k, bias: b, relu: true, workspace: Workspace(capacityFloats: 64, minimumRows: 1))
        let threads = BLAS.threads
        BLAS.setThreads(1)
        let single = winograd(x, kernel: k, bias: b, relu: true)
        BLAS.setThreads(threads)
        let scale = Double(reference.storage.max()!)
        XCTAssertLessThan(Double(chunked.maxAbsDifference(reference)) / scale, 1e-6)
        XCTAssertLessThan(Double(single.maxAbsDifference(reference)) / scale, 1e-6)
    }

    /// dW[ky, kx, ci, co] = Σ x[b, y + ky - 1, x + kx - 1, ci] dy[b, y, x, co] and dB = Σ dy, in float64.
    func directWeightGradient(_ x: Tensor, gradient dy: Tensor) -> (kernel: [Double], bias: [Double]) {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], dy.shape[3])
        var dk = [Double](repeating: 0, count: 9 * cin * cout), db = [Double](repeating: 0, count: cout)
        let (xs, gs) = (x.storage.map(Double.init), dy.storage.map(Double.init))
        for b in 0..<n { for i in 0..<h { for j in 0..<w {
            let g = ((b * h + i) * w + j) * cout
            for co in 0..<cout { db[co] += gs[g + co] }
            for ky in 0..<3 { for kx in 0..<3 {
                let si = i + ky - 1, sj = j + kx - 1
                guard si >= 0, si < h, sj >= 0, sj < w else { continue }
                let s = ((b * h + si) * w + sj) * cin
                for ci in 0..<cin {
                    let xv = xs[s + ci], row = ((ky * 3 + kx) * cin + ci) * cout
                    for co in 0..<cout { dk[row + co] += xv * gs[g + co] }
                }
            } }
        } } }
        return (dk, db)
    }

    /// `Winograd.weightGradient` by `tiling` added to zeroed gradients.
    func winogradWeightGradient(_ x: Tensor, gradient dy: Tensor, tiling: Winograd.Tiling = .f2,
                                workspace: Workspace = Workspace()) -> (kernel: [Float], bias: [Float]) {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], dy.shape[3])
        var dk = [Float](repeating: 0, count: 9 * cin * cout), db = [Float](repeating: 0, count: cout)
        x.storage.withUnsafeBufferPointer { xb in dy.storage.withUnsafeBufferPointer { gb in
            dk.withUnsafeMutableBufferPointer { kb in db.withUnsafeMutableBufferPointer { bb in
                Winograd.weightGradient(xb.baseAddress!, gradient: gb.baseAddress!, n: n, h: h, w: w, cin: cin, cout: cout,
                                        kernelGradient: kb.baseAddress!, biasGradient: bb.baseAddress!, tiling: tiling, workspace: workspace)
            } }
        } }
        return (dk, db)
    }

    typealias LayerShape = (n: Int, h: Int, w: Int, cin: Int, cout: Int)

    /// The weight gradient by `tiling` against a float64 direct one over `shapes` (inputs
    /// non-negative, as after a ReLU, for the indices in `nonNegative`): kernel gradient within
    /// `bound` of its scale, bias gradient within 1e-5, the same bits when repeated. Returns the
    /// worst kernel error.
    func checkWeightGradientMatchesDirect(tiling: Winograd.Tiling, shapes: [LayerShape], bound: Double, seed: UInt64,
                                          nonNegative: Set<Int> = []) -> Double {
        var worst = 0.0
        for (index, s) in shapes.enumerated() {
            var x = randomTensor([s.n, s.h, s.w, s.cin], seed: seed + UInt64(index))
            if nonNegative.contains(index) { x = Tensor(shape: x.shape, storage: x.storage.map { max($0, 0) }) }
            let dy = randomTensor([s.n, s.h, s.w, s.cout], seed: seed + 10 + UInt64(index))
            let (dk, db) = winogradWeightGradient(x, gradient: dy, tiling: tiling)
            let direct = directWeightGradient(x, gradient: dy)
            let err = errorRelativeToScale(dk, direct.kernel)
            worst = max(worst, err)
            XCTAssertLessThan(err, bound, "shape \(s)")
            XCTAssertLessThan(errorRelativeToScale(db, direct.bias), 1e-5, "shape \(s)")
            let again = winogradWeightGradient(x, gradient: dy, tiling: tiling)
            XCTAssertTrue(again.kernel == dk && again.bias == db, "shape \(s): not deterministic")
        }
        return worst
    }

    /// The weight gradient by `tiling` of one layer within `bound` of a float64 direct one however
    /// its tiles are split (one per GEMM, another thread count), and added to what is there.
    func checkWeightGradientCloseAcrossChunkingAndThreads(tiling: Winograd.Tiling, shape s: LayerShape, bound: Double, seed: UInt64) {
        let x = randomTensor([s.n, s.h, s.w, s.cin], seed: seed)
        let dy = randomTensor([s.n, s.h, s.w, s.cout], seed: seed + 1)
        let reference = winogradWeightGradient(x, gradient: dy, tiling: tiling)
        let direct = directWeightGradient(x, gradient: dy)
        XCTAssertLessThan(errorRelativeToScale(reference.kernel, direct.kernel), bound)
        // Another split sums the tiles in another order: within the bound.
        let chunked = winogradWeightGradient(x, gradient: dy, tiling: tiling, workspace: Workspace(capacityFloats: 64, minimumRows: 1))
        let threads = BLAS.threads
        BLAS.setThreads(threads == 1 ? 2 : 1)
        let otherThreads = winogradWeightGradient(x, gradient: dy, tiling: tiling)
        BLAS.setThreads(threads)
        for (label, other) in [("one tile per GEMM", chunked), ("other thread count", otherThreads)] {
            XCTAssertLessThan(errorRelativeToScale(other.kernel, direct.kernel), bound, label)
            XCTAssertLessThan(errorRelativeToScale(other.bias, direct.bias), 1e-5, label)
        }
        // A gradient is added to what is there, not stored over it.
        var twice = reference.kernel
        x.storage.withUnsafeBufferPointer { xb in dy.storage.withUnsafeBufferPointer { gb in twice.withUnsafeMutableBufferPointer { kb in
            Winograd.weightGradient(xb.baseAddress!, gradient: gb.baseAddress!, n: s.n, h: s.h, w: s.w, cin: s.cin, cout: s.cout,
                                    kernelGradient: kb.baseAddress!, biasGradient: nil, tiling: tiling, workspace: Workspace())
        } } }
        XCTAssertLessThan(errorRelativeToScale(twice, direct.kernel.map { 2 * $0 }), bound)
    }

    func testWeightGradientMatchesDirectWithinBound() {
        // Odd sides (partial tiles whose outputs leave the image), one-pixel images, several images
        // per batch, channels off the 8-wide path, and 128-256 channels as in the U-Nets.
        let shapes: [LayerShape] = [
            (2, 7, 5, 32, 32), (3, 1, 1, 64, 32), (3, 8, 8, 32, 64), (1, 6, 9, 256, 128), (2, 16, 16, 64, 64),
            (1, 5, 7, 36, 27), (2, 3, 4, 5, 3), (1, 9, 1, 11, 13),
        ]
        let worst = checkWeightGradientMatchesDirect(tiling: .f2, shapes: shapes, bound: 1e-5, seed: 40)
        print("Winograd F(2x2,3x3) weight gradient: worst error relative to the gradient's scale \(worst)")
    }

    func testWeightGradientCloseAcrossChunkingAndThreads() {
        checkWeightGradientCloseAcrossChunkingAndThreads(tiling: .f2, shape: (3, 10, 11, 32, 40), bound: 1e-5, seed: 11)
    }

    func testConv2DUsesItForWideLayersWithTheSameGradients() throws {
        let threshold = try XCTUnwrap(EngineChoices.current.winogradMinimumChannels, "Winograd is on by default")
        let x = randomTensor([2, 8, 6, 32], seed: 4)
        let k = randomTensor([3, 3, 32, 48], seed: 5, scale: 0.1)
        let wide = Conv2D(name: "wide", kernel: k, bias: randomTensor([48], seed: 6))
        let plan = wide.plan(height: 8, width: 6)
        XCTAssertEqual(plan.forward == .winogradF2, threshold <= 32)
        XCTAssertEqual(plan.weightGradient == .winogradF2,
                       threshold <= 32 && (EngineChoices.current.winogradWeightsMinimumChannels ?? .max) <= 32)
        XCTAssertEqual(Conv2D(name: "narrow", kernel: randomTensor([3, 3, 3, 16], seed: 7), bias: nil).plan(height: 8, width: 6).forward,
                       EngineChoices.current.directConvolution == nil ? .rowIm2col : .direct)
        XCTAssertEqual(Conv2D(name: "pointwise", kernel: randomTensor([1, 1, 64, 64], seed: 7), bias: nil).plan(height: 8, width: 6).forward,
                       .pointwise)
        let y = wide.forward(x, training: true)
        XCTAssertLessThan(errorRelativeToScale(y.storage, directConvolution(x, kernel: k, bias: wide.bias!.value)), 1e-5)
        // dX = conv(dY, rotated kernel) and dW by Winograd, against the band pass.
        let dy = randomTensor(y.shape, seed: 8)
        wide.kernel.zeroGrad(); wide.bias!.zeroGrad()
        let dx = wide.backward(dy)
        var directDx = Tensor.zeros(x.shape)
        let matrix = k.storage.withUnsafeBufferPointer { RowConvolution.gradientMatrix($0.baseAddress!, kh: 3, kw: 3, cin: 32, cout: 48) }
        var partials: [SendablePointer<Float>] = []
        let scratch = Workspace()  // holds the partials until they are added up below
        x.storage.withUnsafeBufferPointer { xb in dy.storage.withUnsafeBufferPointer { db in matrix.withUnsafeBufferPointer { mb in
            directDx.storage.withUnsafeMutableBufferPointer { out in
                partials = RowConvolution.backward(xb.baseAddress!, gradient: db.baseAddress!, n: 2, h: 8, w: 6, cin: 32, cout: 48,
                                                   kh: 3, kw: 3, gradientMatrix: mb.baseAddress!, inputGradient: out.baseAddress!,
                                                   workspace: scratch)
            }
        } } }
        var directDk = Tensor.zeros(k.shape)
        directDk.storage.withUnsafeMutableBufferPointer { RowConvolution.accumulate(partials, into: $0.baseAddress!, kh: 3, kw: 3, cin: 32, cout: 48) }
        let scale = directDx.storage.map(abs).max()!
        XCTAssertLessThan(dx.maxAbsDifference(directDx) / scale, 1e-5)
        XCTAssertLessThan(wide.kernel.grad.maxAbsDifference(directDk) / directDk.storage.map(abs).max()!, 1e-5)
        let directDb = (0..<48).map { c in partials.reduce(Float(0)) { $0 + $1.pointer[9 * 32 * 48 + c] } }
        XCTAssertLessThan(zip(wide.bias!.grad.storage, directDb).map { abs($0 - $1) }.max()! / directDb.map(abs).max()!, 1e-5)
    }

    func testConv2DWeightGradientByWinogradForWideLayers() throws {
        let threshold = try XCTUnwrap(EngineChoices.current.winogradWeightsMinimumChannels, "the Winograd weight gradient is on by default")
        let channels = max(threshold, try XCTUnwrap(EngineChoices.current.winogradMinimumChannels))
        let x = randomTensor([2, 5, 3, channels], seed: 14)
        let layer = Conv2D(name: "wide", kernel: randomTensor([3, 3, channels, channels + 3], seed: 15, scale: 0.1),
                           bias: randomTensor([channels + 3], seed: 16))
        XCTAssertEqual(layer.plan(height: 5, width: 3).weightGradient, .winogradF2)
        XCTAssertEqual(Conv2D(name: "narrower", kernel: randomTensor([3, 3, channels, channels - 1], seed: 15), bias: nil)
            .plan(height: 5, width: 3).weightGradient, .rowIm2col)
        let dy = randomTensor(layer.forward(x, training: true).shape, seed: 17)
        layer.kernel.zeroGrad(); layer.bias!.zeroGrad()
        _ = layer.backward(dy)
        let direct = directWeightGradient(x, gradient: dy)
        XCTAssertLessThan(errorRelativeToScale(layer.kernel.grad.storage, direct.kernel), 1e-5)
        XCTAssertLessThan(errorRelativeToScale(layer.bias!.grad.storage, direct.bias), 1e-5)
    }
}
