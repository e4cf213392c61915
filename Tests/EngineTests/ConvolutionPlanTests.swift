import XCTest
@testable import Engine

/// `ConvolutionPlan.choose` makes exactly the choices `Conv2D` made before the plans existed: the
/// rules below are the old computed properties (`usesWinograd`, `usesWinogradF4`, `directISA`,
/// `directBackwardISA`, `usesWinogradWeightGradient`, `usesWinogradF4WeightGradient`, and
/// `Winograd.smallGemmISA`), verbatim but for reading their thresholds as arguments, with the old
/// `EngineChoices.current` recording formula. Enumerated over kernel sizes, channel counts, image
/// sizes, the first layer's missing input gradient, and thresholds on, off and moved.
final class ConvolutionPlanTests: XCTestCase {
    /// The process-wide settings as the old atomics held them (nil: off).
    struct Settings {
        var winograd: Int?, f4: Int?, weights: Int?, smallGemm: Int?, f4Weights: Int?
        var direct: DirectConvolution.ISA?
    }

    /// The old `EngineChoices.current`.
    func recorded(_ s: Settings) -> EngineChoices {
        EngineChoices(blasCore: "test", blasDetected: nil, threads: 2, winogradMinimumChannels: s.winograd,
                      winogradF4MinimumChannels: s.winograd == nil ? nil : s.f4,
                      directConvolution: s.direct?.name,
                      winogradWeightsMinimumChannels: s.winograd == nil ? nil : s.weights,
                      winogradSmallGemmMaximumChannels: s.winograd == nil || !Winograd.smallGemmSupported ? nil : s.smallGemm,
                      winogradF4WeightsMinimumChannels: s.winograd == nil ? nil : s.f4.flatMap { f4 in s.f4Weights.map { max($0, f4) } })
    }

    /// The old rules, forward then backward, as the old `convolve` and `backward` branched on them.
    func oldPlan(kh: Int, kw: Int, cin: Int, cout: Int, h: Int, w: Int, needed: Bool, _ s: Settings) -> ConvolutionPlan {
        let isPointwise = kh == 1 && kw == 1
        var usesWinograd: Bool {
            guard kh == 3, kw == 3, let minimum = s.winograd else { return false }
            return min(cin, cout) >= minimum
        }
        var usesWinogradF4: Bool {
            guard usesWinograd, let minimum = s.f4 else { return false }
            return min(cin, cout) >= minimum && min(h, w) >= WinogradF4.minimumSide
        }
        var directISA: DirectConvolution.ISA? {
            guard kh == 3, kw == 3, !usesWinograd, max(cin, cout) <= DirectConvolution.maximumChannels,
                  DirectConvolution.accepts(targetChannels: cout) else { return nil }
            return s.direct
        }
        var usesWinogradWeightGradient: Bool {
            guard usesWinograd, let minimum = s.weights else { return false }
            return min(cin, cout) >= minimum
        }
        var directBackwardISA: DirectConvolution.ISA? {
            if usesWinograd {
                guard !usesWinogradWeightGradient, max(cin, cout) <= DirectConvolution.maximumChannels,
                      DirectConvolution.accepts(targetChannels: cout) else { return nil }
                return s.direct
            }
            return needed && !DirectConvolution.accepts(targetChannels: cin) ? nil : directISA
        }
        var usesWinogradF4WeightGradient: Bool {
            guard usesWinogradF4, directBackwardISA == nil, let minimum = s.f4Weights else { return false }
            return min(cin, cout) >= minimum
        }
        func smallGemmISA(_ cs: Int, _ ct: Int) -> DirectConvolution.ISA? {
            guard Winograd.smallGemmSupported, let maximum = s.smallGemm, max(cs, ct) <= maximum, ct > 0, ct % 16 == 0 else { return nil }
            return .avx512
        }
        let winogradTiling: ConvolutionPlan.Algorithm = usesWinogradF4 ? .winogradF4 : .winogradF2
        let forward: ConvolutionPlan.Algorithm = isPointwise ? .pointwise : usesWinogradF4 ? .winogradF4
            : directISA != nil ? .direct : usesWinograd ? .winogradF2 : .rowIm2col
        let dW: ConvolutionPlan.Algorithm, dX: ConvolutionPlan.Algorithm?
        var isa: DirectConvolution.ISA? = forward == .direct ? directISA : nil
        if isPointwise {
            (dW, dX) = (.pointwise, needed ? .pointwise : nil)
        } else if let backwardISA = directBackwardISA {
            isa = backwardISA
            dW = .direct
            dX = !needed ? nil : usesWinograd ? winogradTiling : .direct
        } else if usesWinogradF4WeightGradient || usesWinogradWeightGradient {
            dW = usesWinogradF4WeightGradient ? .winogradF4 : .winogradF2
            dX = needed ? winogradTiling : nil
        } else {
            dW = .rowIm2col
            dX = !needed ? nil : usesWinograd ? winogradTiling : .rowIm2col
        }
        return ConvolutionPlan(forward: forward, inputGradient: dX, weightGradient: dW, directISA: isa,
                               forwardSmallGemm: usesWinograd ? smallGemmISA(cin, cout) : nil,
                               inputGradientSmallGemm: usesWinograd && needed ? smallGemmISA(cout, cin) : nil)
    }

    func testPlansMakeTheOldChoicesForEveryShape() {
        let defaults = Settings(winograd: 32, f4: 32, weights: 64, smallGemm: 32, f4Weights: 1, direct: DirectConvolution.bestSupportedISA)
        var settings = [defaults]
        settings.append(Settings(winograd: nil, f4: 32, weights: 64, smallGemm: 32, f4Weights: 1, direct: defaults.direct))
        settings.append(Settings(winograd: 1, f4: 1, weights: 1, smallGemm: 32, f4Weights: 1, direct: defaults.direct))
        settings.append(Settings(winograd: 16, f4: 16, weights: 64, smallGemm: 64, f4Weights: nil, direct: .plain))
        settings.append(Settings(winograd: 32, f4: nil, weights: nil, smallGemm: nil, f4Weights: 128, direct: nil))
        settings.append(Settings(winograd: 32, f4: 64, weights: 32, smallGemm: 16, f4Weights: 1, direct: .avx2))
        let kernels = [(1, 1), (3, 3), (5, 5), (3, 1), (1, 3)]
        let channels = [1, 3, 5, 8, 16, 24, 31, 32, 33, 48, 63, 64, 65, 128, 256]
        let sides = [(1, 1), (8, 8), (15, 64), (16, 16), (16, 15), (17, 33), (64, 64), (128, 128)]
        var compared = 0
        for s in settings { let choices = recorded(s)
            for (kh, kw) in kernels { for cin in channels { for cout in channels { for (h, w) in sides { for needed in [true, false] {
                let plan = ConvolutionPlan.choose(kernelHeight: kh, kernelWidth: kw, inChannels: cin, outChannels: cout,
                                                  height: h, width: w, inputGradientNeeded: needed, choices: choices)
                let old = oldPlan(kh: kh, kw: kw, cin: cin, cout: cout, h: h, w: w, needed: needed, s)
                if plan != old {
                    XCTFail("\(kh)x\(kw) \(cin) -> \(cout) at \(h)x\(w), dX \(needed), \(s): \(plan) but before \(old)")
                    return
                }
                compared += 1
            } } } } }
        }
        XCTAssertEqual(compared, settings.count * kernels.count * channels.count * channels.count * sides.count * 2)
    }

    /// A layer chooses once per input size, and again when what the choice depends on changes.
    func testConv2DKeepsItsPlanPerSize() {
        let layer = Conv2D(name: "wide", kernel: randomTensor([3, 3, 64, 64], seed: 1), bias: nil)
        layer.choices = engineChoices { $0.winogradMinimumChannels = 32; $0.winogradF4MinimumChannels = 32 }
        XCTAssertEqual(layer.plan(height: 32, width: 32).forward, .winogradF4)
        XCTAssertEqual(layer.plan(height: 8, width: 8).forward, .winogradF2)
        layer.inputGradientNeeded = false
        XCTAssertNil(layer.plan(height: 8, width: 8).inputGradient)
        layer.choices = engineChoices { $0.winogradMinimumChannels = nil }
        XCTAssertEqual(layer.plan(height: 8, width: 8).forward, .rowIm2col)
    }
}
