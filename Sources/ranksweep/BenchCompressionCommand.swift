import ArgumentParser
import Compression
import Engine
import Foundation

/// `ranksweep bench compression`: the seed's sweep grid on a randomly initialised U-Net —
/// parameter and FLOP reduction (compare a numpy count of the same model) and the inference speed-up,
/// baseline and compressed timed interleaved in the same run.
struct BenchCompression: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compression",
        abstract: "Reduction and latency speed-up of svd 50/100/150 and arsvd 0.95/0.9/0.85 on a random U-Net.")

    @Option(name: .customLong("base-filters"), help: "Base filters (16 = unet-small).") var baseFilters = 16
    @Option(name: .customLong("image-size"), help: "Input size.") var imageSize = 128
    @Option(help: "Timed runs per model (median reported).") var runs = 10
    @Option(help: "Batch size of the latency runs.") var batch = 8

    func validate() throws {
        guard baseFilters >= 1, runs >= 1, batch >= 1 else { throw ValidationError("--base-filters, --runs and --batch must be positive") }
        guard imageSize >= 16, imageSize % 16 == 0 else { throw ValidationError("--image-size must be a multiple of 16") }
    }

    func run() throws {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: baseFilters, depth: 4), seed: 1)
        print("U-Net base \(baseFilters), \(imageSize)x\(imageSize)x3: \(model.parameterCount) parameters, "
              + String(format: "%.3f GFLOP/image; BLAS %@, %d threads, batch %d", Double(model.flopsPerImage(height: imageSize, width: imageSize)) / 1e9,
                       BLAS.coreName, BLAS.threads, batch))
        print("| method | params after | param reduction | FLOP reduction | factorised | SVD s | baseline ms/img | compressed ms/img | speed-up |")
        print("|---|---|---|---|---|---|---|---|---|")
        let methods: [CompressionMethod] = [.svd(rank: 50), .svd(rank: 100), .svd(rank: 150), .arsvd(tau: 0.95), .arsvd(tau: 0.9), .arsvd(tau: 0.85)]
        for method in methods {
            let (compressed, s) = try ModelCompressor.compress(model: model, method: method, imageSize: imageSize)
            let latency = try Latency.compareInferenceLatency(baseline: model, compressed: compressed, batch: batch,
                                                              imageSize: imageSize, runs: runs, warmup: 2)
            print(String(format: "| %@ | %d | %.1f%% | %.1f%% | %d/%d | %.3f | %.1f | %.1f | %.2fx |",
                         method.description, s.parametersAfter, s.parameterReductionPercent, s.flopReductionPercent,
                         s.factorisedLayerCount, s.layers.count, s.decompositionSeconds,
                         latency.baseline.medianMsPerImage, latency.compressed.medianMsPerImage, latency.speedUp))
        }
    }
}
