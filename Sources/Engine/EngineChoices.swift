import Foundation
import Synchronization

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

    /// Winograd layers with at least this many input and output channels compute their weight
    /// gradient by Winograd too (`Winograd.weightGradient`), the others by the row-im2col band
    /// pass; nil: never (as in records written before it existed).
    public var winogradWeightsMinimumChannels: Int?

    public static var current: EngineChoices {
        EngineChoices(blasCore: BLAS.coreName, blasDetected: ProcessInfo.processInfo.environment["RANKSWEEP_BLAS_DETECTED"],
                      threads: BLAS.threads, winogradMinimumChannels: winogradThreshold,
                      winogradWeightsMinimumChannels: winogradWeightsThreshold)
    }

    /// One line for logs and benchmark headers.
    public var summary: String {
        "OpenBLAS \(blasCore)" + (blasDetected.map { " (the library picked \($0))" } ?? "") + ", \(threads) threads, Winograd F(2x2,3x3) "
            + (winogradMinimumChannels.map { "from \($0) channels, weight gradient " + (winogradWeightsMinimumChannels.map { "from \($0)" } ?? "by rows") } ?? "off")
    }

    /// Decided once per process. Winograd is GEMM-backed, so it pays wherever the GEMMs are wide
    /// enough, on every CPU kind (measured A/B on Intel AVX-512; see the README's engine section).
    /// RANKSWEEP_WINOGRAD=off or =N (minimum channels) overrides it, for measurements.
    static var winogradThreshold: Int? {
        let n = winogradSetting.load(ordering: .relaxed)
        return n > 0 ? n : nil
    }

    /// The threshold from now on (nil: off); for A/B measurements in one process.
    static func setWinogradThreshold(_ n: Int?) { winogradSetting.store(n ?? 0, ordering: .relaxed) }

    /// From 64 channels: on Intel AVX-512 (SkylakeX kernels, batch 8) the Winograd weight gradient
    /// took 0.65-0.8x the band pass's CPU time at 64-256 channels (8x8 to 128x128 images), and
    /// about the same at 32, where its 32-wide GEMMs are small and the transforms dominate.
    /// RANKSWEEP_WINOGRAD_WEIGHTS=off or =N overrides it, for measurements.
    static let winogradWeightsThreshold: Int? = {
        let text = ProcessInfo.processInfo.environment["RANKSWEEP_WINOGRAD_WEIGHTS"]
        if text == "off" { return nil }
        if let text, let n = Int(text), n >= 1 { return n }
        return 64
    }()

    /// 0: off.
    private static let winogradSetting = Atomic<Int>({
        let text = ProcessInfo.processInfo.environment["RANKSWEEP_WINOGRAD"]
        if text == "off" { return 0 }
        if let text, let n = Int(text), n >= 1 { return n }
        return 32
    }())
}
