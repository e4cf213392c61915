import Foundation
import XCTest
@testable import Engine

/// The direct 3x3 convolution of narrow layers (`DirectConvolution`, C micro-kernels) against
/// float64 loops: forward with bias, folded scale and ReLU, the input gradient, the filter and bias
/// gradients; through `Conv2D` as the engine uses it, on every instruction set this CPU runs.
final class DirectConvolutionTests: XCTestCase {
    typealias Shape = (n: Int, h: Int, w: Int, cin: Int, cout: Int)

    /// cin in {1, 3, 16, 32} x cout in {16, 32}; odd sides (blocks that run past a row's end),
    /// one-pixel and one-row images, several images per batch.
    let shapes: [Shape] = [
        (2, 7, 5, 1, 16), (1, 9, 19, 3, 16), (3, 6, 17, 16, 16), (2, 5, 33, 32, 16),
        (1, 1, 1, 16, 32), (2, 1, 7, 3, 32), (1, 8, 3, 16, 32), (2, 11, 1, 32, 32), (1, 4, 40, 1, 32),
    ]

    var supportedISAs: [DirectConvolution.ISA] { DirectConvolution.ISA.allCases.filter(\.isSupported) }

    /// conv3x3(x, k) (* scale) + bias in float64, "same" padding.
    func forwardReference(_ x: Tensor, _ k: Tensor, bias: [Float]?, scale: [Float]? = nil) -> [Double] {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.shape[3])
        var y = [Double](repeating: 0, count: n * h * w * cout)
        for b in 0..<n { for i in 0..<h { for j in 0..<w { for co in 0..<cout {
            var s = 0.0
            for ky in 0..<3 { for kx in 0..<3 {
                let si = i + ky - 1, sj = j + kx - 1
                guard si >= 0, si < h, sj >= 0, sj < w else { continue }
                for ci in 0..<cin { s += Double(x[b, si, sj, ci]) * Double(k[ky, kx, ci, co]) }
            } }
            y[((b * h + i) * w + j) * cout + co] = s * Double(scale?[co] ?? 1) + Double(bias?[co] ?? 0)
        } } } }
        return y
    }

    /// (dX, dW, dBias) of L = sum(dy * conv3x3(x, k) + b) in float64.
    func backwardReference(_ x: Tensor, _ k: Tensor, _ dy: Tensor) -> (dx: [Double], dw: [Double], db: [Double]) {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.shape[3])
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: k.count)
        var db = [Double](repeating: 0, count: cout)
        for b in 0..<n { for i in 0..<h { for j in 0..<w { for co in 0..<cout {
            let g = Double(dy[b, i, j, co])
            db[co] += g
            for ky in 0..<3 { for kx in 0..<3 {
                let si = i + ky - 1, sj = j + kx - 1
                guard si >= 0, si < h, sj >= 0, sj < w else { continue }
                for ci in 0..<cin {
                    dx[((b * h + si) * w + sj) * cin + ci] += g * Double(k[ky, kx, ci, co])
                    dw[((ky * 3 + kx) * cin + ci) * cout + co] += g * Double(x[b, si, sj, ci])
                }
            } }
        } } } }
        return (dx, dw, db)
    }

    /// Largest |a - b| over the largest |b|.
    func errorRelativeToScale(_ a: [Float], _ b: [Double]) -> Double {
        XCTAssertEqual(a.count, b.count)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / scale
    }

    /// A layer whose direct convolutions run on `isa` (the best this CPU runs by default).
    func layer(_ s: Shape, seed: UInt64, isa: DirectConvolution.ISA = DirectConvolution.bestSupportedISA) -> (Conv2D, Tensor) {
        let k = randomTensor([3, 3, s.cin, s.cout], seed: seed, scale: 0.2)
        let b = randomTensor([s.cout], seed: seed + 1)
        let x = randomTensor([s.n, s.h, s.w, s.cin], seed: seed + 2)
        let conv = Conv2D(name: "narrow", kernel: k, bias: b)
        conv.choices = engineChoices(directISA: isa)
        return (conv, x)
    }

    /// `DirectConvolution.convolve` with a folded scale, bias and ReLU, as `Conv2D.inferenceForward` calls it.
    func directForward(_ x: Tensor, _ k: Tensor, bias: [Float]?, scale: [Float]?, relu: Bool, isa: DirectConvolution.ISA) -> [Float] {
        let (n, h, w, cin, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.shape[3])
        var y = [Float](repeating: .nan, count: n * h * w * cout)
        let kernel = scale.map { s in k.storage.withUnsafeBufferPointer { DirectConvolution.scaledKernel($0.baseAddress!, cin: cin, cout: cout, scale: s) } } ?? k.storage
        x.storage.withUnsafeBufferPointer { xb in kernel.withUnsafeBufferPointer { kb in (bias ?? []).withUnsafeBufferPointer { bb in
            y.withUnsafeMutableBufferPointer { yb in
                DirectConvolution.convolve(xb.baseAddress!, n: n, h: h, w: w, sourceChannels: cin, kernel: kb.baseAddress!, targetChannels: cout,
                                           bias: bias == nil ? nil : bb.baseAddress!, relu: relu, into: yb.baseAddress!, isa: isa,
                                           workspace: Workspace())
            }
        } } }
        return y
    }

    func testForwardWithBiasScaleAndReLUMatchesFloat64() {
        for isa in supportedISAs {
            for (index, s) in shapes.enumerated() {
                let (conv, x) = layer(s, seed: UInt64(100 + 10 * index))
                let bias = conv.bias!.value.storage
                let scale = (0..<s.cout).map { Float(0.5 + 0.05 * Double($0)) }
                let reference = forwardReference(x, conv.kernel.value, bias: bias, scale: scale)
                let y = directForward(x, conv.kernel.value, bias: bias, scale: scale, relu: false, isa: isa)
                XCTAssertLessThan(errorRelativeToScale(y, reference), 1e-5, "\(isa.name) shape \(s)")
                // The fused ReLU is exactly the clamp of the same sums; without bias, the plain sums.
                let clamped = directForward(x, conv.kernel.value, bias: bias, scale: scale, relu: true, isa: isa)
                XCTAssertEqual(clamped, y.map { max($0, 0) }, "\(isa.name) shape \(s)")
                let plain = directForward(x, conv.kernel.value, bias: nil, scale: nil, relu: false, isa: isa)
                XCTAssertLessThan(errorRelativeToScale(plain, forwardReference(x, conv.kernel.value, bias: nil)), 1e-5, "\(isa.name) shape \(s)")
            }
        }
    }

    func testConv2DForwardAndGradientsMatchFloat64() {
        for isa in supportedISAs {
            for (index, s) in shapes.enumerated() {
                let (conv, x) = layer(s, seed: UInt64(300 + 10 * index), isa: isa)
                // The input gradient's output has cin channels: direct when a multiple of 16.
                conv.inputGradientNeeded = s.cin % 16 == 0
                // 32 -> 32 is Winograd's forward and dX (from 32 channels): then the direct forward
                // stays out, while its weight gradient stays direct.
                let winograd = min(s.cin, s.cout) >= (EngineChoices.current.winogradMinimumChannels ?? .max)
                let plan = conv.plan(height: s.h, width: s.w)
                XCTAssertEqual(plan.forward == .direct, !winograd, "shape \(s)")
                XCTAssertEqual([.winogradF2, .winogradF4].contains(plan.forward), winograd, "shape \(s)")
                XCTAssertEqual(plan.inputGradient, !conv.inputGradientNeeded ? nil : winograd ? plan.forward : .direct, "shape \(s)")
                XCTAssertEqual(plan.weightGradient, .direct, "shape \(s)")
                XCTAssertEqual(plan.directISA, isa, "shape \(s)")
                let y = conv.forward(x, training: true)
                XCTAssertLessThan(errorRelativeToScale(y.storage, forwardReference(x, conv.kernel.value, bias: conv.bias!.value.storage)),
                                  1e-5, "\(isa.name) shape \(s)")
                let dy = randomTensor(y.shape, seed: UInt64(301 + 10 * index))
                let dx = conv.backward(dy)
                let reference = backwardReference(x, conv.kernel.value, dy)
                if conv.inputGradientNeeded {
                    XCTAssertLessThan(errorRelativeToScale(dx.storage, reference.dx), 1e-5, "\(isa.name) dX shape \(s)")
                } else {
                    XCTAssertEqual(dx.storage, [Float](repeating: 0, count: x.count), "\(isa.name) shape \(s)")
                }
                XCTAssertLessThan(errorRelativeToScale(conv.kernel.grad.storage, reference.dw), 1e-5, "\(isa.name) dW shape \(s)")
                XCTAssertLessThan(errorRelativeToScale(conv.bias!.grad.storage, reference.db), 1e-5, "\(isa.name) dBias shape \(s)")
            }
        }
    }

    /// The input gradient of a layer whose input channels are not a multiple of 16 cannot run
    /// direct: all of its backward stays on `RowConvolution`, and is still right.
    func testOtherChannelCountsKeepGoingToRowConvolution() {
        let others: [Shape] = [(2, 5, 7, 16, 8), (1, 6, 5, 3, 5), (2, 4, 9, 16, 24), (1, 5, 6, 16, 48), (1, 7, 4, 3, 16), (1, 3, 5, 64, 16)]
        for (index, s) in others.enumerated() {
            let (conv, x) = layer(s, seed: UInt64(500 + 10 * index))
            conv.inputGradientNeeded = true
            let direct = s.cout % 16 == 0 && max(s.cin, s.cout) <= DirectConvolution.maximumChannels
            let plan = conv.plan(height: s.h, width: s.w)
            XCTAssertEqual(plan.forward == .direct, direct, "shape \(s)")
            XCTAssertEqual(plan.inputGradient, .rowIm2col, "shape \(s)")
            XCTAssertEqual(plan.weightGradient, .rowIm2col, "shape \(s)")
            let y = conv.forward(x, training: true)
            XCTAssertLessThan(errorRelativeToScale(y.storage, forwardReference(x, conv.kernel.value, bias: conv.bias!.value.storage)),
                              1e-5, "shape \(s)")
            let dy = randomTensor(y.shape, seed: UInt64(501 + 10 * index))
            let dx = conv.backward(dy)
            let reference = backwardReference(x, conv.kernel.value, dy)
            XCTAssertLessThan(errorRelativeToScale(dx.storage, reference.dx), 1e-5, "dX shape \(s)")
            XCTAssertLessThan(errorRelativeToScale(conv.kernel.grad.storage, reference.dw), 1e-5, "dW shape \(s)")
            XCTAssertLessThan(errorRelativeToScale(conv.bias!.grad.storage, reference.db), 1e-5, "dBias shape \(s)")
        }
    }

    /// Forward, dX and dW of one layer on one ISA: bit-identical on repeated runs; forward and dX
    /// also whatever the thread count (each output's sum has one order).
    func testRepeatedRunsAreIdentical() {
        let s: Shape = (4, 12, 21, 16, 32)
        func run(threads: Int, isa: DirectConvolution.ISA) -> [[Float]] {
            let saved = BLAS.threads
            BLAS.setThreads(threads)
            defer { BLAS.setThreads(saved) }
            let (conv, x) = layer(s, seed: 700, isa: isa)
            let y = conv.forward(x, training: true)
            let dx = conv.backward(randomTensor(y.shape, seed: 701))
            return [y.storage, dx.storage, conv.kernel.grad.storage, conv.bias!.grad.storage]
        }
        for isa in supportedISAs {
            let first = run(threads: 2, isa: isa)
            XCTAssertEqual(run(threads: 2, isa: isa), first, isa.name)
            let serial = run(threads: 1, isa: isa)
            XCTAssertEqual(serial[0], first[0], "\(isa.name) forward, 1 vs 2 threads")
            XCTAssertEqual(serial[1], first[1], "\(isa.name) dX, 1 vs 2 threads")
        }
    }

    /// Every instruction set this CPU runs gives the same results within float32 rounding (AVX2
    /// and AVX-512 fuse multiply-adds, plain C does not).
    func testInstructionSetsAgreeWithinRounding() {
        let s: Shape = (2, 9, 23, 16, 32)
        var results: [(DirectConvolution.ISA, [[Float]])] = []
        for isa in supportedISAs {
            let (conv, x) = layer(s, seed: 900, isa: isa)
            let y = conv.forward(x, training: true)
            let dx = conv.backward(randomTensor(y.shape, seed: 901))
            results.append((isa, [y.storage, dx.storage, conv.kernel.grad.storage, conv.bias!.grad.storage]))
        }
        print("Direct convolutions compared on: \(results.map(\.0.name).joined(separator: ", "))")
        XCTAssertGreaterThanOrEqual(results.count, 2, "this CPU runs at least plain C and AVX2")
        guard results.count >= 2 else { return }  // plain C only: nothing to compare it with
        for (isa, r) in results.dropFirst() {
            for (part, (a, b)) in zip(r, results[0].1).enumerated() {
                let scale = max(b.map(abs).max() ?? 0, 1e-30)
                let worst = zip(a, b).map { abs($0 - $1) }.max()! / scale
                // Sums of up to 9 x 32 terms, or of a batch's pixels for dW: float32 rounding.
                XCTAssertLessThan(worst, 1e-5, "\(isa.name) vs \(results[0].0.name), result \(part)")
            }
        }
        // Plain C rounds each product; the fused variants do not, so they are different code paths.
        XCTAssertEqual(results[0].0, .plain)
        XCTAssertNotEqual(results[1].1[0], results[0].1[0], "\(results[1].0.name) forward equals plain C's bit for bit")
    }

    /// The choice is recorded (summary line, metrics.json), and a record from before it existed
    /// still decodes, with no direct convolution.
    func testEngineChoicesRecordTheInstructionSet() throws {
        let best = DirectConvolution.bestSupportedISA
        let chosen = engineChoices(directISA: best)
        XCTAssertEqual(chosen.directConvolution, best.name)
        XCTAssertTrue(chosen.summary.hasSuffix("direct narrow 3x3 \(best.name)"), chosen.summary)
        let decoded = try JSONDecoder().decode(EngineChoices.self, from: JSONEncoder().encode(chosen))
        XCTAssertEqual(decoded, chosen)
        let off = engineChoices(directISA: nil)
        XCTAssertNil(off.directConvolution)
        XCTAssertTrue(off.summary.hasSuffix("direct narrow 3x3 off"), off.summary)
        let narrow = Conv2D(name: "narrow", kernel: randomTensor([3, 3, 16, 16], seed: 1), bias: nil)
        narrow.choices = off
        XCTAssertEqual(narrow.plan(height: 8, width: 8), ConvolutionPlan(forward: .rowIm2col, inputGradient: .rowIm2col, weightGradient: .rowIm2col))
        let old = #"{"blasCore":"SkylakeX","threads":2,"winogradMinimumChannels":32}"#
        let oldChoices = try JSONDecoder().decode(EngineChoices.self, from: Data(old.utf8))
        XCTAssertEqual(oldChoices.blasCore, "SkylakeX")
        XCTAssertNil(oldChoices.directConvolution)
    }

    /// The instruction sets the kernels run are the ones the CPU's flags (/proc/cpuinfo) say it
    /// has, so that AVX-512 (or AVX2) does not drop out unnoticed on a CPU that has it; and the
    /// process's choice is the best of them unless RANKSWEEP_DIRECT says otherwise.
    func testInstructionSetsFollowTheCPUFlags() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flagsLine = try XCTUnwrap(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }, "no flags line in /proc/cpuinfo")
        let flags = Set(flagsLine.split(separator: ":", maxSplits: 1).last!.split(separator: " ").map(String.init))
        XCTAssertEqual(DirectConvolution.ISA.avx2.isSupported, flags.contains("avx2") && flags.contains("fma"), "AVX2")
        XCTAssertEqual(DirectConvolution.ISA.avx512.isSupported, flags.contains("avx512f") && flags.contains("fma"), "AVX-512")
        XCTAssertEqual(Winograd.smallGemmSupported, flags.contains("avx512f") && flags.contains("fma"), "the small GEMM is AVX-512 only")
        print("Instruction sets of the C kernels on this CPU: \(supportedISAs.map(\.name).joined(separator: ", ")); "
              + "Winograd small GEMM \(Winograd.smallGemmSupported ? "AVX-512" : "off (no AVX-512)"); "
              + "this process: direct \(EngineChoices.current.directConvolution ?? "off")")
        if ProcessInfo.processInfo.environment["RANKSWEEP_DIRECT"] == nil {
            XCTAssertEqual(EngineChoices.current.directConvolution, DirectConvolution.bestSupportedISA.name)
        }
    }
}
