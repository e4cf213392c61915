/// Which algorithm computes each pass of one `Conv2D` on images of one size, and with which
/// instruction set: chosen once per layer and input size by `choose`, a pure function of the
/// layer's shape, the image size and the `EngineChoices`. Forward and backward switch over it.
///
/// The rules (the measurements behind each threshold are in `EngineChoices`, `DirectConvolution`
/// and Sources/Engine/README.md):
/// - 1x1 kernels are one GEMM on the pixels (`pointwise`), every pass.
/// - 3x3 kernels with at least `winogradMinimumChannels` channels in and out run forward and the
///   input gradient by Winograd: F(4x4, 3x3) from `winogradF4MinimumChannels` on images of at least
///   `WinogradF4.minimumSide` pixels a side, F(2x2, 3x3) otherwise.
/// - Other 3x3 kernels with at most `DirectConvolution.maximumChannels` channels and a multiple of
///   16 outputs run forward by the direct kernels (`direct`); their backward too when the input
///   gradient's output (`cin` channels) is a multiple of 16 as well, or is not needed.
/// - A Winograd layer's weight gradient: direct if the layer is narrow enough for the direct
///   kernels and below `winogradWeightsMinimumChannels`; else F(4x4) where forward is F(4x4) (from
///   `winogradF4WeightsMinimumChannels`), else F(2x2) from `winogradWeightsMinimumChannels`, else
///   the row-im2col band pass.
/// - Everything else: the row-im2col band pass (`RowConvolution`).
public struct ConvolutionPlan: Sendable, Equatable {
    public enum Algorithm: String, Sendable, Codable, CaseIterable {
        /// A 1x1 kernel: one GEMM over the pixels (`Conv2D.pointwiseForward`, `pointwiseBackward`).
        case pointwise = "pointwise GEMM"
        /// im2col along the kernel's width, one GEMM, a sum along its height (`RowConvolution`).
        case rowIm2col = "row im2col GEMM"
        /// The C micro-kernels of `DirectConvolution`, with the plan's `isa`.
        case direct = "direct"
        /// Winograd F(2x2, 3x3) (`Winograd`), GEMMs per transform element.
        case winogradF2 = "Winograd F(2x2,3x3)"
        /// Winograd F(4x4, 3x3) (`WinogradF4`).
        case winogradF4 = "Winograd F(4x4,3x3)"
    }

    /// Forward (and inference with a folded normalisation).
    public var forward: Algorithm
    /// dL/dx; nil when the layer does not compute it (`inputGradientNeeded` false).
    public var inputGradient: Algorithm?
    /// dL/dW and the bias gradient.
    public var weightGradient: Algorithm
    /// The instruction set of the passes that are `direct`; nil when none is.
    public var directISA: DirectConvolution.ISA?
    /// The instruction set of the small-GEMM kernel for a Winograd forward's products
    /// (`Winograd.smallGemmISA`); nil: `cblas_sgemm`, or not Winograd.
    public var forwardSmallGemm: DirectConvolution.ISA?
    /// The same for a Winograd input gradient (source `cout` channels, target `cin`).
    public var inputGradientSmallGemm: DirectConvolution.ISA?

    public init(forward: Algorithm, inputGradient: Algorithm?, weightGradient: Algorithm, directISA: DirectConvolution.ISA? = nil,
                forwardSmallGemm: DirectConvolution.ISA? = nil, inputGradientSmallGemm: DirectConvolution.ISA? = nil) {
        self.forward = forward
        self.inputGradient = inputGradient
        self.weightGradient = weightGradient
        self.directISA = directISA
        self.forwardSmallGemm = forwardSmallGemm
        self.inputGradientSmallGemm = inputGradientSmallGemm
    }

    /// The instruction set of the engine's own kernels in this plan (direct, or the Winograd small
    /// GEMM); nil when every product goes to OpenBLAS.
    public var isa: DirectConvolution.ISA? { directISA ?? forwardSmallGemm ?? inputGradientSmallGemm }

    /// The plan of a `kernelHeight` x `kernelWidth`, `inChannels` -> `outChannels` convolution
    /// (stride 1, same padding) on images of `height` x `width`.
    public static func choose(kernelHeight: Int, kernelWidth: Int, inChannels cin: Int, outChannels cout: Int,
                              height: Int, width: Int, inputGradientNeeded: Bool, choices: EngineChoices) -> ConvolutionPlan {
        if kernelHeight == 1 && kernelWidth == 1 {
            return ConvolutionPlan(forward: .pointwise, inputGradient: inputGradientNeeded ? .pointwise : nil, weightGradient: .pointwise)
        }
        let is3x3 = kernelHeight == 3 && kernelWidth == 3
        let narrowest = min(cin, cout)
        func reaches(_ minimum: Int?) -> Bool { minimum.map { narrowest >= $0 } ?? false }
        let winograd = is3x3 && reaches(choices.winogradMinimumChannels)
        let f4 = winograd && reaches(choices.winogradF4MinimumChannels) && min(height, width) >= WinogradF4.minimumSide
        // The direct kernels take at most 32 channels each way and write blocks of 16 outputs.
        let directFits = is3x3 && max(cin, cout) <= DirectConvolution.maximumChannels
            && DirectConvolution.accepts(targetChannels: cout)
        let directForward = !winograd && directFits ? choices.directISA : nil
        let winogradWeights = winograd && reaches(choices.winogradWeightsMinimumChannels)
        // A narrow layer run by Winograd keeps its weight gradient direct (its dX by Winograd): a
        // 32 -> 32 layer at 64x64 (batch 8, Intel AVX-512) took 0.75x the band pass's backward CPU
        // time. A layer that is not Winograd goes direct backward only where dX (cin outputs) can too.
        let directBackward: DirectConvolution.ISA?
        if winograd {
            directBackward = !winogradWeights && directFits ? choices.directISA : nil
        } else {
            directBackward = inputGradientNeeded && !DirectConvolution.accepts(targetChannels: cin) ? nil : directForward
        }
        // F(4x4) dW on F(4x4) layers unless dW is direct (a 32 -> 32 layer at 64x64 took half
        // F(4x4)'s CPU time that way).
        let f4Weights = f4 && directBackward == nil && reaches(choices.winogradF4WeightsMinimumChannels)

        let winogradTiling: Algorithm = f4 ? .winogradF4 : .winogradF2
        let forward: Algorithm = f4 ? .winogradF4 : directForward != nil ? .direct : winograd ? .winogradF2 : .rowIm2col
        let weightGradient: Algorithm = directBackward != nil ? .direct : f4Weights ? .winogradF4 : winogradWeights ? .winogradF2 : .rowIm2col
        let inputGradient: Algorithm? = !inputGradientNeeded ? nil
            : winograd ? winogradTiling : directBackward != nil ? .direct : .rowIm2col
        return ConvolutionPlan(
            forward: forward, inputGradient: inputGradient, weightGradient: weightGradient,
            directISA: [forward, inputGradient, weightGradient].contains(.direct) ? choices.directISA : nil,
            forwardSmallGemm: winograd ? Winograd.smallGemmISA(sourceChannels: cin, targetChannels: cout, choices: choices) : nil,
            inputGradientSmallGemm: winograd && inputGradientNeeded
                ? Winograd.smallGemmISA(sourceChannels: cout, targetChannels: cin, choices: choices) : nil)
    }
}

/// One row of a model's plan table (`UNet.convolutionPlans`, metrics.json's `convolutionPlans`, whose
/// keys are camelCase like the rest of the file).
public struct ConvolutionPlanRecord: Codable, Sendable, Equatable {
    public var layer: String
    public var forward: String
    /// "none" when the layer does not compute it.
    public var inputGradient: String
    public var weightGradient: String
    /// The instruction set of the engine's own kernels (`ConvolutionPlan.isa`), "BLAS" when every
    /// product goes to OpenBLAS.
    public var isa: String

    public init(layer: String, plan: ConvolutionPlan) {
        self.layer = layer
        forward = plan.forward.rawValue
        inputGradient = plan.inputGradient?.rawValue ?? "none"
        weightGradient = plan.weightGradient.rawValue
        isa = plan.isa?.name ?? "BLAS"
    }
}
