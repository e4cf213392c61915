import Foundation
import XCTest
@testable import Compression
@testable import Engine

/// The measured example of the module's note, skipped unless `RANKSWEEP_COMPRESSION_BENCH=1`:
/// a randomly initialised unet-small (128x128x3, base 16), every method of the seed's sweep:
/// parameter and FLOP reduction (compare ANCHORS.md's numpy table) and the inference speed-up,
/// baseline and compressed timed interleaved in the same run (batch 8, 10 runs, 2 warm-up).
final class CompressionBenchmarkTests: XCTestCase {
    func testUNetSmallSweep() throws {
        guard ProcessInfo.processInfo.environment["RANKSWEEP_COMPRESSION_BENCH"] == "1" else {
            throw XCTSkip("set RANKSWEEP_COMPRESSION_BENCH=1 to run the unet-small compression benchmark")
        }
        let env = ProcessInfo.processInfo.environment
        let base = Int(env["RANKSWEEP_BENCH_BASE"] ?? "") ?? 16
        let runs = Int(env["RANKSWEEP_BENCH_RUNS"] ?? "") ?? 10
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: base, depth: 4), seed: 1)
        print("unet base \(base), 128x128x3: \(model.parameterCount) parameters, "
              + "\(Double(model.flopsPerImage(height: 128, width: 128)) / 1e9) GFLOP/image; "
              + "BLAS \(BLAS.coreName), \(BLAS.threads) threads")
        print("| method | params after | param reduction | FLOP reduction | factorised | SVD s | baseline ms/img (best) | compressed ms/img (best) | speed-up |")
        print("|---|---|---|---|---|---|---|---|---|")
        let methods: [CompressionMethod] = [.svd(rank: 50), .svd(rank: 100), .svd(rank: 150),
                                            .arsvd(tau: 0.95), .arsvd(tau: 0.9), .arsvd(tau: 0.85)]
        for method in methods {
            let (compressed, s) = try ModelCompressor.compress(model: model, method: method, imageSize: 128)
            let latency = try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: 8,
                                                               imageSize: 128, runs: runs, warmup: 2)
            print(String(format: "| %@ | %d | %.1f%% | %.1f%% | %d/%d | %.3f | %.1f (%.1f) | %.1f (%.1f) | %.2fx |",
                         method.description, s.parametersAfter, s.parameterReductionPercent, s.flopReductionPercent,
                         s.factorisedLayerCount, s.layers.count, s.decompositionSeconds,
                         latency.baseline.medianMsPerImage, latency.baseline.bestMsPerImage,
                         latency.compressed.medianMsPerImage, latency.compressed.bestMsPerImage, latency.speedUp))
            if case .arsvd(let tau) = method, tau == 0.9 {
                for d in s.layers {
                    print("    \(d.name) \(d.kernelShape) rank \(d.chosenRank.map(String.init) ?? "-") / \(d.fullRank)"
                          + " energy \(String(format: "%.3f", d.energyAtChosenRank ?? 1)) \(d.factorised ? "factorised" : d.skipReasonText)")
                }
            }
        }
    }
}
