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

    func winograd(_ x: Tensor, kernel k: Tensor, bias: Tensor?, relu: Bool = false, workspace: Workspace = Workspace()) -> Tensor {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.shape[3])
        var y = Tensor.uninitialized([n, h, w, cout])
        let matrices = k.storage.withUnsafeBufferPointer { Winograd.kernelMatrices($0.baseAddress!, cin: cin, cout: cout) }
        x.storage.withUnsafeBufferPointer { xb in matrices.withUnsafeBufferPointer { mb in
            (bias?.storage ?? []).withUnsafeBufferPointer { bb in y.storage.withUnsafeMutableBufferPointer { yb in
                Winograd.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin, matrices: mb.baseAddress!, targetChannels: cout,
                                  bias: bias == nil ? nil : bb.baseAddress!, relu: relu, into: yb.baseAddress!, workspace: workspace)
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

    func testConv2DUsesItForWideLayersWithTheSameGradients() throws {
        let threshold = try XCTUnwrap(EngineChoices.winogradThreshold, "Winograd is on by default")
        let x = randomTensor([2, 8, 6, 32], seed: 4)
        let k = randomTensor([3, 3, 32, 48], seed: 5, scale: 0.1)
        let wide = Conv2D(name: "wide", kernel: k, bias: randomTensor([48], seed: 6))
        XCTAssertEqual(wide.usesWinograd, threshold <= 32)
        XCTAssertFalse(Conv2D(name: "narrow", kernel: randomTensor([3, 3, 3, 16], seed: 7), bias: nil).usesWinograd)
        XCTAssertFalse(Conv2D(name: "pointwise", kernel: randomTensor([1, 1, 64, 64], seed: 7), bias: nil).usesWinograd)
        let y = wide.forward(x, training: true)
        XCTAssertLessThan(errorRelativeToScale(y.storage, directConvolution(x, kernel: k, bias: wide.bias!.value)), 1e-5)
        // dX = conv(dY, rotated kernel) by Winograd against the direct band pass; dW is the band pass in both.
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
        XCTAssertLessThan(wide.kernel.grad.maxAbsDifference(directDk) / directDk.storage.map(abs).max()!, 1e-6)
    }
}
