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

    /// Whether those layers' weight gradient runs by Winograd too (else by the row-im2col band
    /// pass); nil in records written before it existed, when it did not.
    public var winogradWeights: Bool?

    public static var current: EngineChoices {
        EngineChoices(blasCore: BLAS.coreName, blasDetected: ProcessInfo.processInfo.environment["RANKSWEEP_BLAS_DETECTED"],
                      threads: BLAS.threads, winogradMinimumChannels: winogradThreshold, winogradWeights: winogradWeightGradient)
    }

    /// One line for logs and benchmark headers.
    public var summary: String {
        "OpenBLAS \(blasCore)" + (blasDetected.map { " (the library picked \($0))" } ?? "") + ", \(threads) threads, Winograd F(2x2,3x3) "
            + (winogradMinimumChannels.map { "from \($0) channels" + (winogradWeights == false ? " (weight gradient by rows)" : "") } ?? "off")
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

    /// Whether Winograd layers compute their weight gradient by Winograd (default) or by the
    /// row-im2col band pass (RANKSWEEP_WINOGRAD_WEIGHTS=off, for A/B measurements).
    static let winogradWeightGradient = ProcessInfo.processInfo.environment["RANKSWEEP_WINOGRAD_WEIGHTS"] != "off"

    /// 0: off.
    private static let winogradSetting = Atomic<Int>({
        let text = ProcessInfo.processInfo.environment["RANKSWEEP_WINOGRAD"]
        if text == "off" { return 0 }
        if let text, let n = Int(text), n >= 1 { return n }
        return 32
    }())
}
