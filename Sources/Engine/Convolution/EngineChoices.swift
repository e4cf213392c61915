import Foundation

/// The engine's per-CPU choices, decided once at start-up from what the process runs on, and
/// recorded with every timing and in a training run's metrics: results are deterministic for a
/// given CPU kind, thread count and these choices.
public struct EngineChoices: Codable, Sendable, Equatable {
    /// OpenBLAS's kernel family (e.g. "SkylakeX"), picked when the library loaded.
    public var blasCore: String
    /// The family the library picked by itself when the command re-executed with another one (see
    /// the `ranksweep` tool's BLASEnvironment); nil when the library's pick stands.
    public var blasDetected: String?
    /// Parts the engine splits work into.
    public var threads: Int
    /// 3x3 convolutions with at least this many input and output channels run by
    /// Winograd F(2x2, 3x3) (`Winograd`), forward and input gradient; nil: never.
    public var winogradMinimumChannels: Int?
    /// Of those, layers with at least this many input and output channels, on images of at least
    /// `WinogradF4.minimumSide` pixels a side, run by F(4x4, 3x3) (`WinogradF4`) instead; nil: never
    /// (and in metrics written before it existed).
    public var winogradF4MinimumChannels: Int?
    /// The instruction set of the direct convolutions of narrow 3x3 layers (`DirectConvolution`:
    /// "AVX-512", "AVX2" or "plain C"); nil: off, or a record from before they existed.
    public var directConvolution: String?
    /// Winograd layers with at least this many input and output channels compute their weight
    /// gradient by Winograd too (`Winograd.weightGradient`), the others by the row-im2col band
    /// pass; nil: never (as in records written before it existed).
    public var winogradWeightsMinimumChannels: Int?
    /// Winograd layers with at most this many input and output channels (a multiple of 16
    /// outputs) compute their transform-domain products by the AVX-512 small-GEMM kernel
    /// (`ckernels_winograd_small_gemm`) instead of `cblas_sgemm`; nil: never (no AVX-512, off, or a
    /// record from before it existed).
    public var winogradSmallGemmMaximumChannels: Int?
    /// F(4x4, 3x3) layers with at least this many input and output channels compute their weight
    /// gradient by F(4x4, 3x3) too (`WinogradF4.weightGradient`), whatever `winogradWeightsMinimumChannels`
    /// says; nil: never (as in records written before it existed).
    public var winogradF4WeightsMinimumChannels: Int? = nil

    /// The choices of this process: the thresholds and instruction set read from the environment
    /// once (`fromEnvironment`), with the BLAS library's kernel family and thread count as they are
    /// now. Every layer starts from it; tests and A/B measurements give layers other values.
    public static var current: EngineChoices {
        var choices = fromEnvironment
        choices.blasCore = BLAS.coreName
        choices.threads = BLAS.threads
        return choices
    }

    /// The direct convolutions' instruction set (`directConvolution` by name; nil: off).
    var directISA: DirectConvolution.ISA? {
        directConvolution.flatMap { name in DirectConvolution.ISA.allCases.first { $0.name == name } }
    }

    /// One line for logs and benchmark headers.
    public var summary: String {
        "OpenBLAS \(blasCore)" + (blasDetected.map { " (the library picked \($0))" } ?? "") + ", \(threads) threads, Winograd F(2x2,3x3) "
            + (winogradMinimumChannels.map { "from \($0) channels" } ?? "off")
            + (winogradWeightsMinimumChannels.map { ", its weight gradient from \($0) channels" } ?? "")
            + (winogradF4MinimumChannels.map { ", F(4x4,3x3) from \($0) channels on images of \(WinogradF4.minimumSide)+ pixels" } ?? "")
            + (winogradSmallGemmMaximumChannels.map { ", its products by the AVX-512 small GEMM up to \($0) channels" } ?? "")
            + (winogradF4WeightsMinimumChannels.map { ", the F(4x4) weight gradient from \($0) channels" } ?? "")
            + ", direct narrow 3x3 " + (directConvolution ?? "off")
    }

    /// Read once per process: every threshold's default with its measurements, and the environment
    /// switches that override them for A/B measurements.
    private static let fromEnvironment: EngineChoices = {
        let winograd = channelSetting("RANKSWEEP_WINOGRAD", default: winogradDefault)
        let f4 = channelSetting("RANKSWEEP_WINOGRAD_F4", default: winogradF4Default)
        let weights = channelSetting("RANKSWEEP_WINOGRAD_WEIGHTS", default: winogradWeightsDefault)
        let smallGemm = channelSetting("RANKSWEEP_WINOGRAD_SMALL_GEMM", default: winogradSmallGemmDefault)
        let f4Weights = channelSetting("RANKSWEEP_WINOGRAD_F4_WEIGHTS", default: winogradF4WeightsDefault)
        return EngineChoices(
            blasCore: "", blasDetected: ProcessInfo.processInfo.environment["RANKSWEEP_BLAS_DETECTED"], threads: 0,
            winogradMinimumChannels: winograd,
            winogradF4MinimumChannels: winograd == nil ? nil : f4,
            directConvolution: DirectConvolution.environmentISA?.name,
            winogradWeightsMinimumChannels: winograd == nil ? nil : weights,
            winogradSmallGemmMaximumChannels: winograd == nil || !Winograd.smallGemmSupported ? nil : smallGemm,
            // Recorded as the effective minimum: a layer runs F(4x4) at all only from `f4` channels.
            winogradF4WeightsMinimumChannels: winograd == nil ? nil : f4.flatMap { f4 in f4Weights.map { max($0, f4) } })
    }()

    /// Winograd is GEMM-backed, so it pays wherever the GEMMs are wide enough, on every CPU kind
    /// (measured A/B on Intel AVX-512; see docs/ENGINE.md). RANKSWEEP_WINOGRAD=off or =N (minimum
    /// channels) overrides it, for measurements.
    static let winogradDefault = 32

    /// F(4x4, 3x3)'s threshold (see `winogradF4MinimumChannels`). RANKSWEEP_WINOGRAD_F4=off or =N
    /// overrides it, for measurements.
    static let winogradF4Default = 32

    /// For F(2x2) layers (F(4x4) layers follow `winogradF4WeightsDefault`). From 64 channels: on
    /// Intel AVX-512 (SkylakeX kernels, batch 8) the Winograd weight gradient took 0.65-0.8x the
    /// band pass's CPU time at 64-256 channels (8x8 to 128x128 images), and
    /// about the same at 32, where its 32-wide GEMMs are small and the transforms dominate.
    /// RANKSWEEP_WINOGRAD_WEIGHTS=off or =N overrides it, for measurements.
    static let winogradWeightsDefault = 64

    /// Up to 32 channels (see `winogradSmallGemmMaximumChannels`): on Intel AVX-512 (batch 8) a
    /// 32 -> 32 layer at 64x64 took 0.84x the CPU time forward with it (F(4x4, 3x3)), and its
    /// backward 0.92x; at 64 channels it measured the same as OpenBLAS's SkylakeX kernels.
    /// Winograd still starts at 32 channels: at 16, F(4x4, 3x3) with it measured the same as the
    /// direct kernels (its input and output transforms then cost as much as the products).
    /// RANKSWEEP_WINOGRAD_SMALL_GEMM=off or =N overrides it, for measurements.
    static let winogradSmallGemmDefault = 32

    /// F(4x4, 3x3)'s weight-gradient threshold (see `winogradF4WeightsMinimumChannels`): every
    /// F(4x4) layer (1) but those whose weight gradient is direct (`ConvolutionPlan`: at
    /// 32 -> 32 channels, 64x64, the AVX-512 kernel took 0.5x F(4x4)'s CPU time). On Intel AVX-512
    /// (SkylakeX kernels, batch 8; dW alone, interleaved in one process) it took 0.34-0.43x the CPU
    /// time of the row-im2col band pass at 32 -> 64 and 64 -> 32 channels (64x64 and 32x32 images),
    /// 0.60-0.79x F(2x2)'s at 64-256 channels (32x32, 16x16) and 0.66-0.91x at unet-paper's 512-1024
    /// (32x32, 16x16 with only 64 tiles); unet-small training steps 0.93x (median of 8 pairs).
    /// RANKSWEEP_WINOGRAD_F4_WEIGHTS=off or =N (minimum channels) overrides it, for measurements.
    static let winogradF4WeightsDefault = 1

    /// A minimum channel count from `variable` ("off" or a positive number, for measurements);
    /// nil means off, and anything else leaves `default`.
    private static func channelSetting(_ variable: String, default value: Int) -> Int? {
        let text = ProcessInfo.processInfo.environment[variable]
        if text == "off" { return nil }
        if let text, let n = Int(text), n >= 1 { return n }
        return value
    }
}
