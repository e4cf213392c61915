import ArgumentParser
import Basics
import Compression
import Engine
import Foundation

/// `ranksweep bench compression`: the seed's sweep grid on randomly initialised U-Nets (by default
/// unet-small, 3 channels, and the held-out-style 1-channel model, both base 16) — parameter and
/// FLOP reduction (compare a numpy count of the same model) and the inference speed-up, baseline
/// and compressed timed in interleaved rounds in the same run, next to the FLOP ratio. Every eligible
/// layer is factorised (as `compress` does without a latency profile), unless `--latency-profile`
/// gives one. Each model is
/// first timed against an unchanged copy of itself: that self-check should read 1.00x ± 0.03, and
/// tells how far the other figures can be trusted on this machine at this moment.
struct BenchCompression: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compression",
        abstract: "Reduction and latency speed-up of compression settings (default: the seed grid) on random U-Nets.",
        discussion: """
        --methods takes NAME=SETTING items: svd=50, arsvd=0.9, tucker2=16, tucker2=0.25, tucker2=auto, tucker2=tau0.9,
        spatial-svd=8. --min-flop-cut 30 times only the settings that cut FLOPs by at least 30% (the others are listed untimed).
        """)

    @Option(name: .customLong("base-filters"), help: "Base filters (16 = unet-small).") var baseFilters = 16
    @Option(name: .customLong("image-size"), help: "Input size.") var imageSize = 128
    @Option(name: .customLong("input-channels"), parsing: .upToNextOption,
            help: "Input channels of each model benchmarked (3 = unet-small's RGB, 1 = the held-out-style gray model).")
    var inputChannels: [Int] = [3, 1]
    @Option(help: "Timed runs per model in each round.") var runs = 6
    @Option(help: "Interleaved rounds (the figure is the median of the rounds' medians).") var rounds = 5
    @Option(help: "Batch size of the latency runs.") var batch = 8
    @Option(name: .customLong("latency-profile"), help: "Keep the layers this profile (`ranksweep profile-layers` of the same model shape) times faster full.")
    var latencyProfile: String?
    @Option(help: "Comma-separated NAME=SETTING (default: svd 50/100/150, arsvd 0.95/0.9/0.85).")
    var methods = "svd=50,svd=100,svd=150,arsvd=0.95,arsvd=0.9,arsvd=0.85"
    @Option(name: .customLong("min-flop-cut"), help: "Time only settings whose FLOP reduction is at least this percentage.")
    var minFlopCut = 0.0

    func validate() throws {
        guard baseFilters >= 1, runs >= 1, rounds >= 1, batch >= 1, !inputChannels.isEmpty, inputChannels.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--base-filters, --runs, --rounds, --batch and --input-channels must be positive")
        }
        guard imageSize >= 16, imageSize % 16 == 0 else { throw ValidationError("--image-size must be a multiple of 16") }
        guard minFlopCut >= 0, minFlopCut < 100 else { throw ValidationError("--min-flop-cut must be in [0, 100)") }
        _ = try settings()
    }

    /// `--methods` parsed: `NAME=SETTING`, the setting a rank (`16`, `0.25`, `auto`) or `tau0.9` (arsvd: a tau).
    func settings() throws -> [CompressionMethod] {
        try methods.split(separator: ",").map { item in
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw ValidationError("--methods: '\(item)' is not NAME=SETTING") }
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
                throw ValidationError("--methods: '\(item)': \(error.message)")
            }
        }
    }

    func run() throws {
        print("CPU \(CPUModel.name); OpenBLAS \(BLAS.coreName), \(BLAS.threads) threads")
        for channels in inputChannels { try benchmark(inputChannels: channels) }
    }

    private func benchmark(inputChannels: Int) throws {
        let model = UNet(config: UNetConfig(inputChannels: inputChannels, baseFilters: baseFilters, depth: 4), seed: 1)
        print("")
        print("U-Net base \(baseFilters), \(imageSize)x\(imageSize)x\(inputChannels): \(model.parameterCount) parameters, "
              + String(format: "%.3f GFLOP/image; batch %d, %d rounds of %d interleaved runs per model",
                       Double(model.flopsPerImage(height: imageSize, width: imageSize)) / 1e9, batch, rounds, runs))
        let same = try Latency.compareInferenceLatency(baseline: model, compressed: ModelCompressor.copy(of: model), batch: batch,
                                                       imageSize: imageSize, runs: runs, warmup: 2, rounds: rounds)
        let ok = abs(same.speedUp - 1) <= 0.03 && abs((same.cpuSpeedUp ?? 1) - 1) <= 0.03
        print(String(format: "self-check (model against an unchanged copy): %.3fx wall (rounds %@), %.3fx CPU: %@",
                     same.speedUp, roundList(same), same.cpuSpeedUp ?? 0,
                     ok ? "within 1.00 ± 0.03" : "OUTSIDE 1.00 ± 0.03: the machine is too noisy for the figures below"))
        let profile = try latencyProfile.map { try LatencyProfile.read(path: UserPath.absolute($0)) }
        print("| method | params after | param reduction | FLOP reduction | FLOP ratio | factorised | kept full: not faster | SVD s "
              + "| baseline ms/img | compressed ms/img | speed-up wall | rounds | speed-up CPU | CPU speed-up / FLOP ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        var ratios: [Double] = []
        for method in try settings() {
            let start = monotonicSeconds()
            let (compressed, s) = try ModelCompressor.compress(model: model, method: method, imageSize: imageSize, latencyProfile: profile)
            let seconds = monotonicSeconds() - start
            guard s.flopReductionPercent >= minFlopCut else {
                print(String(format: "| %@ | %d | %.1f%% | %.1f%% | %.2f | %d/%d | - | %.2f | not timed: cuts FLOPs by less than %.0f%% |",
                             method.description, s.parametersAfter, s.parameterReductionPercent, s.flopReductionPercent,
                             Double(s.flopsBefore) / Double(max(1, s.flopsAfter)), s.factorisedLayerCount, s.layers.count, seconds, minFlopCut))
                continue
            }
            let latency = try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: batch,
                                                              imageSize: imageSize, runs: runs, warmup: 2, rounds: rounds)
            let flopRatio = Double(s.flopsBefore) / Double(max(1, s.flopsAfter))
            let slower = s.layers.filter { if case .slowerThanFull = $0.skipReason { true } else { false } }.count
            print(String(format: "| %@ | %d | %.1f%% | %.1f%% | %.2f | %d/%d | %d | %.2f | %.2f | %.2f | %.2fx | %@ | %.2fx | %.2f |",
                         method.description, s.parametersAfter, s.parameterReductionPercent, s.flopReductionPercent, flopRatio,
                         s.factorisedLayerCount, s.layers.count, slower, seconds,
                         latency.baseline.medianMsPerImage, latency.compressed.medianMsPerImage, latency.speedUp,
                         roundList(latency), latency.cpuSpeedUp ?? 0, (latency.cpuSpeedUp ?? 0) / flopRatio))
            ratios.append((latency.cpuSpeedUp ?? 0) / flopRatio)
        }
        if !ratios.isEmpty {
            let sorted = ratios.sorted()
            print(String(format: "CPU speed-up / FLOP ratio over the %d timed settings: median %.2f, min %.2f, max %.2f",
                         ratios.count, sorted[sorted.count / 2], sorted.first!, sorted.last!))
        }
    }

    /// "0.98-1.02": the smallest and largest round ratio.
    private func roundList(_ c: LatencyComparison) -> String {
        guard let r = c.roundSpeedUps, let lo = r.min(), let hi = r.max() else { return "-" }
        return String(format: "%.2f-%.2f", lo, hi)
    }
}
