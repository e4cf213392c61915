import ArgumentParser
import Engine
import Foundation

/// `ranksweep bench engine`: the engine's speed on the reference U-Nets next to this machine's
/// own sgemm ceiling and, when a Python with TensorFlow is at hand, next to TensorFlow on the same
/// model, all measured in the same run (the engine's steps are split around TensorFlow's so that
/// both see the same stretch of a noisy machine).
struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Benchmark training and inference of unet-small and unet-paper against the sgemm peak and TensorFlow.")

    @Option(help: "Timed training steps for unet-small.") var steps = 10
    @Option(help: "Timed training steps for unet-paper (0 skips it).") var paperSteps = 3
    @Option(help: "Engine threads (default: OpenBLAS's own choice, normally all cores).") var threads: Int?
    @Flag(help: "Also print where the time goes, layer by layer.") var layers = false
    @Option(help: "Python with TensorFlow to measure in the same run (default: $RANKSWEEP_TENSORFLOW_PYTHON, else ~/.cache/ranksweep/tf-venv from `make tensorflow` when present).")
    var tensorflow: String?
    @Flag(help: "Skip the TensorFlow comparison.") var noTensorflow = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard paperSteps >= 0 else { throw ValidationError("--paper-steps cannot be negative") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try SweepCLI.guarded {
            if let threads { BLAS.setThreads(threads) }
            let peer = noTensorflow ? nil : try TensorFlowPeer.locate(python: tensorflow)
            print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads")
            let peak = EngineBenchmark.sgemmPeak()
            let peakMedian = median(peak)
            print(String(format: "sgemm 2048^3: median %.0f GFLOP/s (best %.0f)", peakMedian, peak.max()!))
            try measureSmall(peer: peer, peakMedian: peakMedian)
            if paperSteps > 0 { try measurePaper(peer: peer, peakMedian: peakMedian) }
            print(String(format: "peak RSS %.0f MiB", Double(EngineBenchmark.peakRSSBytes) / 1048576))
        }
    }

    private func measureSmall(peer: TensorFlowPeer?, peakMedian: Double) throws {
        let inferBatches = max(5, steps)
        func engine(_ trainSteps: Int, _ batches: Int, profile: Bool) -> EngineBenchmark.ModelFigures {
            EngineBenchmark.measure(name: "unet-small", imageSize: 128, baseFilters: 16, batch: 8,
                                    trainSteps: trainSteps, inferBatches: batches, profileLayers: profile)
        }
        // Engine, TensorFlow, engine: each side's median covers the same stretch of the run.
        let first = engine((steps + 1) / 2, (inferBatches + 1) / 2, profile: layers)
        let tf = try peer?.measure(model: "small", steps: steps, inferBatches: inferBatches, threads: BLAS.threads)
        var small = first
        if steps / 2 > 0 {
            let second = engine(steps / 2, inferBatches / 2, profile: false)
            small.trainStepSeconds += second.trainStepSeconds
            small.inferBatchSeconds += second.inferBatchSeconds
        }
        print("unet-small 128x128x3 base 16 depth 4, batch 8:")
        print("  parameters \(small.parameters) (\(small.trainableParameters) trainable), forward \(String(format: "%.3f", small.forwardGFLOPPerImage)) GFLOP/image")
        print(String(format: "  training  %.1f images/s (median step %.3f s, min %.3f, max %.3f), %.0f GFLOP/s = %.0f%% of sgemm peak",
                     small.trainingImagesPerSecond, small.medianTrainStep, small.trainStepSeconds.min()!, small.trainStepSeconds.max()!,
                     small.trainingGFLOPPerSecond, 100 * small.trainingGFLOPPerSecond / peakMedian))
        print(String(format: "  inference %.1f images/s, %.0f GFLOP/s = %.0f%% of sgemm peak",
                     small.inferenceImagesPerSecond, small.inferenceGFLOPPerSecond, 100 * small.inferenceGFLOPPerSecond / peakMedian))
        print(String(format: "  peak RSS so far %.0f MiB", Double(EngineBenchmark.peakRSSBytes) / 1048576))
        if let tf {
            let training = Double(tf.batch) / median(tf.trainStepSeconds)
            let inference = Double(tf.batch) / median(tf.inferBatchSeconds)
            print(String(format: "  TensorFlow %@ in this run (%d threads): training %.1f images/s (median step %.3f s), inference %.1f images/s, peak RSS %.0f MiB",
                         tf.tensorflow, tf.threads, training, median(tf.trainStepSeconds), inference, tf.peakRssMib ?? 0))
            print(String(format: "  ranksweep / TensorFlow: training %.2fx, inference %.2fx",
                         small.trainingImagesPerSecond / training, small.inferenceImagesPerSecond / inference))
        } else {
            print("  TensorFlow 2.21 on this machine kind (reference figure from an earlier run, not this run): training 49.6 images/s median, inference 123 images/s")
            print("  (for TensorFlow measured in the same run: `make tensorflow`, or --tensorflow PYTHON)")
        }
        if layers {
            printLayerTable("a training step", first.trainingLayerSeconds, per: first.trainStepSeconds.count)
            printLayerTable("an inference batch", first.inferenceLayerSeconds, per: first.inferBatchSeconds.count)
        }
    }

    private func measurePaper(peer: TensorFlowPeer?, peakMedian: Double) throws {
        let paper = EngineBenchmark.measure(name: "unet-paper", imageSize: 256, baseFilters: 64, batch: 4,
                                            trainSteps: paperSteps, inferBatches: 0, profileLayers: layers)
        print("unet-paper 256x256x3 base 64 depth 4, batch 4:")
        print("  parameters \(paper.parameters), forward \(String(format: "%.2f", paper.forwardGFLOPPerImage)) GFLOP/image")
        print(String(format: "  training step %.2f s median (%.2f s per image), %.0f GFLOP/s = %.0f%% of sgemm peak",
                     paper.medianTrainStep, paper.medianTrainStep / 4, paper.trainingGFLOPPerSecond,
                     100 * paper.trainingGFLOPPerSecond / peakMedian))
        if let peer {
            let tf = try peer.measure(model: "paper", steps: paperSteps, inferBatches: 0, threads: BLAS.threads)
            let step = median(tf.trainStepSeconds)
            print(String(format: "  TensorFlow %@ in this run: training step %.2f s median; ranksweep / TensorFlow %.2fx",
                         tf.tensorflow, step, step / paper.medianTrainStep))
        } else {
            print("  TensorFlow 2.21 (reference figure from an earlier run, not this run): 3.60 s per step")
        }
        if layers { printLayerTable("a unet-paper training step", paper.trainingLayerSeconds, per: paper.trainStepSeconds.count) }
    }

    /// Milliseconds per step for each layer call, largest first, with its share of the step.
    private func printLayerTable(_ what: String, _ entries: [LayerProfile.Entry], per count: Int) {
        guard count > 0, !entries.isEmpty else { return }
        let steps = Double(count)
        let total = entries.reduce(0) { $0 + $1.seconds }
        print(String(format: "  where %@ goes (%.1f ms in timed layers):", what, 1000 * total / steps))
        for entry in entries.sorted(by: { $0.seconds > $1.seconds }) {
            print("    " + entry.key.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: " %8.2f ms  %5.1f%%", 1000 * entry.seconds / steps, 100 * entry.seconds / total))
        }
    }
}
