import XCTest
@testable import Engine

/// Winograd F(4x4, 3x3) against the float64 direct convolution (helpers in `WinogradTests`): its
/// documented error bounds (forward and weight gradient), the fused bias and ReLU, the input and
/// weight gradients through `Conv2D`, and independence from chunking and the thread count.
extension WinogradTests {
    func winogradF4(_ x: Tensor, kernel k: Tensor, bias: Tensor?, relu: Bool = false, forInputGradient: Bool = false,
                    workspace: Workspace = Workspace(), choices: EngineChoices = .current) -> Tensor {
        let (n, h, w, cs) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cin, cout) = (k.shape[2], k.shape[3])
        let ct = forInputGradient ? cin : cout
        var y = Tensor.uninitialized([n, h, w, ct])
        let matrices = k.storage.withUnsafeBufferPointer {
            WinogradF4.kernelMatrices($0.baseAddress!, cin: cin, cout: cout, forInputGradient: forInputGradient)
        }
        x.storage.withUnsafeBufferPointer { xb in matrices.withUnsafeBufferPointer { mb in
            (bias?.storage ?? []).withUnsafeBufferPointer { bb in y.storage.withUnsafeMutableBufferPointer { yb in
                WinogradF4.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cs, matrices: mb.baseAddress!, targetChannels: ct,
                                    bias: bias == nil ? nil : bb.baseAddress!, relu: relu, into: yb.baseAddress!,
                                    smallGemm: Winograd.smallGemmISA(sourceChannels: cs, targetChannels: ct, choices: choices),
                                    workspace: workspace)
            } }
        } }
        return y
    }

    func testF4MatchesDirectConvolutionWithinBound() {
        // Sides that are not multiples of 4 (partial tiles), one-pixel images, several images,
        // 32-256 channels, and channel counts off the 8-wide path.
        let shapes: [(n: Int, h: Int, w: Int, cin: Int, cout: Int)] = [
            (2, 7, 5, 32, 32), (1, 1, 1, 64, 32), (3, 8, 8, 32, 64), (1, 6, 9, 256, 128), (1, 10, 6, 128, 256),
            (1, 17, 16, 64, 64), (1, 5, 7, 36, 27), (2, 3, 4, 5, 3),
        ]
        var worst = 0.0
        for (index, s) in shapes.enumerated() {
            let x = randomTensor([s.n, s.h, s.w, s.cin], seed: UInt64(40 + index))
            let k = randomTensor([3, 3, s.cin, s.cout], seed: UInt64(50 + index), scale: 0.1)
            let b = index % 2 == 0 ? randomTensor([s.cout], seed: UInt64(60 + index)) : nil
            let y = winogradF4(x, kernel: k, bias: b)
            let err = errorRelativeToScale(y.storage, directConvolution(x, kernel: k, bias: b))
            worst = max(worst, err)
            XCTAssertLessThan(err, 2e-5, "shape \(s)")
            XCTAssertEqual(winogradF4(x, kernel: k, bias: b, relu: true).storage, y.storage.map { max($0, 0) }, "shape \(s)")
        }
        print("Winograd F(4x4,3x3): worst error relative to the output's scale \(worst)")
    }

    func testF4InputGradientIsTheRotatedConvolution() {
        // dX[y, x, ci] = sum over (ky, kx, co) of dY[y - ky + 1, x - kx + 1, co] * W[ky, kx, ci, co].
        let (n, h, w, cin, cout) = (2, 9, 6, 40, 24)
        let dy = randomTensor([n, h, w, cout], seed: 70)
        let k = randomTensor([3, 3, cin, cout], seed: 71, scale: 0.1)
        var rotated = Tensor.zeros([3, 3, cout, cin])
        for ky in 0..<3 { for kx in 0..<3 { for ci in 0..<cin { for co in 0..<cout {
            rotated[2 - ky, 2 - kx, co, ci] = k[ky, kx, ci, co]
        } } } }
        let dx = winogradF4(dy, kernel: k, bias: nil, forInputGradient: true)
        XCTAssertEqual(dx.shape, [n, h, w, cin])
        XCTAssertLessThan(errorRelativeToScale(dx.storage, directConvolution(dy, kernel: rotated, bias: nil)), 2e-5)
    }

    func testF4DeterministicAndCloseAcrossChunkingAndThreads() {
        let x = randomTensor([3, 13, 11, 32], seed: 72)
        let k = randomTensor([3, 3, 32, 40], seed: 73, scale: 0.1)
        let b = randomTensor([40], seed: 74)
        let reference = winogradF4(x, kernel: k, bias: b, relu: true)
        XCTAssertTrue(winogradF4(x, kernel: k, bias: b, relu: true).storage == reference.storage, "same split, same result")
        let chunked = winogradF4(x, kernel: k, bias: b, relu: true, workspace: Workspace(capacityFloats: 64, minimumRows: 1))
        let threads = BLAS.threads
        BLAS.setThreads(1)
        let single = winogradF4(x, kernel: k, bias: b, relu: true)
        BLAS.setThreads(threads)
        // Other splits change the GEMMs' row counts and so OpenBLAS's summation order; the
        // transforms (factors up to 8) carry that rounding to the output: within the error bound.
        let scale = Double(reference.storage.max()!)
        XCTAssertLessThan(Double(chunked.maxAbsDifference(reference)) / scale, 2e-5)
        XCTAssertLessThan(Double(single.maxAbsDifference(reference)) / scale, 2e-5)
    }

    func testConv2DUsesF4OnWideLayersOfLargeImagesOnly() throws {
        let minimum = try XCTUnwrap(EngineChoices.current.winogradF4MinimumChannels, "F(4x4, 3x3) is on by default")
        let channels = max(minimum, 32)
        let k = randomTensor([3, 3, channels, channels], seed: 75, scale: 0.05)
        let layer = Conv2D(name: "wide", kernel: k, bias: randomTensor([channels], seed: 76))
        XCTAssertEqual(layer.plan(height: WinogradF4.minimumSide, width: WinogradF4.minimumSide + 3).forward, .winogradF4)
        XCTAssertEqual(layer.plan(height: WinogradF4.minimumSide - 1, width: 64).forward, .winogradF2)
        XCTAssertNotEqual(Conv2D(name: "narrow", kernel: randomTensor([3, 3, 16, 16], seed: 77), bias: nil)
            .plan(height: 64, width: 64).forward, .winogradF4)
        let x = randomTensor([1, WinogradF4.minimumSide, WinogradF4.minimumSide + 2, channels], seed: 78)
        let y = layer.forward(x, training: true)
        XCTAssertLessThan(errorRelativeToScale(y.storage, directConvolution(x, kernel: k, bias: layer.bias!.value)), 2e-5)
    }

    func testF4WeightGradientMatchesDirectWithinBound() {
        // Sides that are not multiples of 4 (tiles whose outputs leave the image), 16-64 pixels as
        // in the U-Nets, tiny images, several images, channels 5-256 and off the 8-wide path, and
        // a non-negative input (as after a ReLU) whose gradient sums do not cancel.
        let shapes: [LayerShape] = [
            (2, 16, 16, 32, 32), (1, 64, 64, 32, 32), (1, 17, 19, 64, 40), (2, 32, 32, 64, 64), (1, 16, 16, 256, 128),
            (1, 16, 18, 128, 256), (2, 21, 13, 5, 27), (3, 3, 5, 36, 11), (1, 1, 1, 7, 9), (1, 33, 30, 45, 61),
        ]
        // Shape 3's inputs are non-negative, as after a ReLU.
        let worst = checkWeightGradientMatchesDirect(tiling: .f4, shapes: shapes, bound: 2e-5, seed: 80, nonNegative: [3])
        print("Winograd F(4x4,3x3) weight gradient: worst error relative to the gradient's scale \(worst)")
    }

    func testF4WeightGradientCloseAcrossChunkingAndThreads() {
        checkWeightGradientCloseAcrossChunkingAndThreads(tiling: .f4, shape: (3, 18, 17, 32, 40), bound: 1e-4, seed: 100)
    }

    func testConv2DWeightGradientByF4OnF4Layers() throws {
        let minimum = try XCTUnwrap(EngineChoices.current.winogradF4WeightsMinimumChannels, "the F(4x4, 3x3) weight gradient is on by default")
        let channels = max(minimum, try XCTUnwrap(EngineChoices.current.winogradF4MinimumChannels),
                           try XCTUnwrap(EngineChoices.current.winogradMinimumChannels))
        let side = WinogradF4.minimumSide
        let layer = Conv2D(name: "wide", kernel: randomTensor([3, 3, channels, channels + 5], seed: 102, scale: 0.1),
                           bias: randomTensor([channels + 5], seed: 103))
        XCTAssertEqual(layer.plan(height: side, width: side + 1).weightGradient, .winogradF4)
        XCTAssertNotEqual(layer.plan(height: side - 1, width: side + 1).weightGradient, .winogradF4, "F(2x2, 3x3) below the F(4x4) side")
        let x = randomTensor([2, side, side + 1, channels], seed: 104)
        let dy = randomTensor(layer.forward(x, training: true).shape, seed: 105)
        layer.kernel.zeroGrad(); layer.bias!.zeroGrad()
        let dx = layer.backward(dy)
        let direct = directWeightGradient(x, gradient: dy)
        XCTAssertLessThan(errorRelativeToScale(layer.kernel.grad.storage, direct.kernel), 1e-4)
        XCTAssertLessThan(errorRelativeToScale(layer.bias!.grad.storage, direct.bias), 1e-5)
        // dX is still the rotated convolution of dY.
        var rotated = Tensor.zeros([3, 3, channels + 5, channels])
        for ky in 0..<3 { for kx in 0..<3 { for ci in 0..<channels { for co in 0..<(channels + 5) {
            rotated[2 - ky, 2 - kx, co, ci] = layer.kernel.value[ky, kx, ci, co]
        } } } }
        XCTAssertLessThan(errorRelativeToScale(dx.storage, directConvolution(dy, kernel: rotated, bias: nil)), 2e-5)
        // Recorded as the effective minimum (every F(4x4) layer by default); off for A/B: the band pass or F(2x2) instead.
        let f4 = try XCTUnwrap(EngineChoices.current.winogradF4MinimumChannels)
        if ProcessInfo.processInfo.environment["RANKSWEEP_WINOGRAD_F4_WEIGHTS"] == nil {
            XCTAssertEqual(minimum, max(EngineChoices.winogradF4WeightsDefault, f4))
        }
        XCTAssertTrue(EngineChoices.current.summary.contains(", the F(4x4) weight gradient from \(minimum) channels"),
                      EngineChoices.current.summary)
        let off = engineChoices { $0.winogradF4WeightsMinimumChannels = nil }
        XCTAssertFalse(off.summary.contains("the F(4x4) weight gradient"), off.summary)
        layer.choices = off
        XCTAssertNotEqual(layer.plan(height: side, width: side + 1).weightGradient, .winogradF4)
        layer.kernel.zeroGrad()
        _ = layer.forward(x, training: true)
        _ = layer.backward(dy)
        XCTAssertLessThan(errorRelativeToScale(layer.kernel.grad.storage, direct.kernel), 1e-5)
    }
}
