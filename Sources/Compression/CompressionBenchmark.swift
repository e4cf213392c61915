import Basics
import Engine
import Foundation

extension CompressionMethod {
    /// A comma-separated list of `NAME=SETTING` items, the setting a rank (`16`, `0.25`, `auto`) or
    /// `tau0.9` (arsvd takes a bare tau): `svd=50,arsvd=0.9,tucker2=auto`.
    public static func settingsList(_ text: String) throws -> [CompressionMethod] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw CompressionError("'\(item)' is not NAME=SETTING") }
            let (name, setting) = (parts[0], parts[1])
            let isTau = name == "arsvd" || setting.hasPrefix("tau")
            let value = setting.hasPrefix("tau") ? String(setting.dropFirst(3)) : setting
            do {
                if isTau {
                    guard let tau = Double(value) else { throw CompressionError("tau must be a number, got '\(value)'") }
                    return try CompressionMethod(name: name, rankText: nil, tau: tau)
                }
                return try CompressionMethod(name: name, rankText: value, tau: nil)
            } catch let error as CompressionError {
                throw CompressionError("'\(item)': \(error.message)")
            }
        }
    }
}

/// `ranksweep bench compression`: compression settings on randomly initialised U-Nets — parameter
/// and FLOP reduction and the inference speed-up, baseline and compressed timed in interleaved
/// rounds in the same run, next to the FLOP ratio. Each model is first timed against an unchanged
/// copy of itself: that self-check should read 1.00x ± 0.03, and tells how far the other figures can
/// be trusted on this machine at this moment.
public struct CompressionBenchmark {
    public var baseFilters = 16, imageSize = 128, runs = 6, rounds = 5, batch = 8
    /// Time only settings whose FLOP reduction is at least this percentage.
    public var minFlopCut = 0.0
    public var methods: [CompressionMethod] = []
    public var latencyProfile: LatencyProfile?
    private let say: (String) -> Void

    public init(say: @escaping (String) -> Void) { self.say = say }

    /// One model of `inputChannels` channels, every setting in turn.
    public func run(inputChannels: Int) throws {
        let model = UNet(config: UNetConfig(inputChannels: inputChannels, baseFilters: baseFilters, depth: 4), seed: 1)
        say("")
        say("U-Net base \(baseFilters), \(imageSize)x\(imageSize)x\(inputChannels): \(model.parameterCount) parameters, "
              + String(format: "%.3f GFLOP/image; batch %d, %d rounds of %d interleaved runs per model",
                       Double(model.flopsPerImage(height: imageSize, width: imageSize)) / 1e9, batch, rounds, runs))
        let same = try Latency.compareInferenceLatency(baseline: model, compressed: ModelCompressor.copy(of: model), batch: batch,
                                                       imageSize: imageSize, runs: runs, warmup: 2, rounds: rounds)
        let ok = abs(same.speedUp - 1) <= 0.03 && abs((same.cpuSpeedUp ?? 1) - 1) <= 0.03
        say(String(format: "self-check (model against an unchanged copy): %.3fx wall (rounds %@), %.3fx CPU: %@",
                     same.speedUp, roundList(same), same.cpuSpeedUp ?? 0,
                     ok ? "within 1.00 ± 0.03" : "OUTSIDE 1.00 ± 0.03: the machine is too noisy for the figures below"))
        let profile = latencyProfile
        say("| method | params after | param reduction | FLOP reduction | FLOP ratio | factorised | kept full: not faster | SVD s "
              + "| baseline ms/img | compressed ms/img | speed-up wall | rounds | speed-up CPU | CPU speed-up / FLOP ratio |")
        say("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        var ratios: [Double] = []
        for method in methods {
            let start = monotonicSeconds()
            let (compressed, s) = try ModelCompressor.compress(model: model, method: method, imageSize: imageSize, latencyProfile: profile)
            let seconds = monotonicSeconds() - start
            guard s.flopReductionPercent >= minFlopCut else {
                say(String(format: "| %@ | %d | %.1f%% | %.1f%% | %.2f | %d/%d | - | %.2f | not timed: cuts FLOPs by less than %.0f%% |",
                             method.description, s.parametersAfter, s.parameterReductionPercent, s.flopReductionPercent,
                             Double(s.flopsBefore) / Double(max(1, s.flopsAfter)), s.factorisedLayerCount, s.layers.count, seconds, minFlopCut))
                continue
            }
            let latency = try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: batch,
                                                              imageSize: imageSize, runs: runs, warmup: 2, rounds: rounds)
            let flopRatio = Double(s.flopsBefore) / Double(max(1, s.flopsAfter))
            let slower = s.layers.filter { if case .slowerThanFull = $0.skipReason { true } else { false } }.count
            say(String(format: "| %@ | %d | %.1f%% | %.1f%% | %.2f | %d/%d | %d | %.2f | %.2f | %.2f | %.2fx | %@ | %.2fx | %.2f |",
                         method.description, s.parametersAfter, s.parameterReductionPercent, s.flopReductionPercent, flopRatio,
                         s.factorisedLayerCount, s.layers.count, slower, seconds,
                         latency.baseline.medianMsPerImage, latency.compressed.medianMsPerImage, latency.speedUp,
                         roundList(latency), latency.cpuSpeedUp ?? 0, (latency.cpuSpeedUp ?? 0) / flopRatio))
            ratios.append((latency.cpuSpeedUp ?? 0) / flopRatio)
        }
        if !ratios.isEmpty {
            let sorted = ratios.sorted()
            say(String(format: "CPU speed-up / FLOP ratio over the %d timed settings: median %.2f, min %.2f, max %.2f",
                         ratios.count, sorted[sorted.count / 2], sorted.first!, sorted.last!))
        }
    }

    /// "0.98-1.02": the smallest and largest round ratio.
    private func roundList(_ c: LatencyComparison) -> String {
        guard let r = c.roundSpeedUps, let lo = r.min(), let hi = r.max() else { return "-" }
        return String(format: "%.2f-%.2f", lo, hi)
    }
}
