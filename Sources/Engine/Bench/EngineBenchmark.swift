import Basics
import CSupport
import Foundation

/// Measures the engine against the machine's own sgemm ceiling (see `bench engine` for TensorFlow's
/// figures on this machine kind). Quote medians; the machines are noisy.
public enum EngineBenchmark {
    public struct ModelFigures: Sendable {
        public var name: String
        public var imageSize: Int, baseFilters: Int, batch: Int
        public var parameters: Int, trainableParameters: Int
        public var forwardGFLOPPerImage: Double
        public var trainStepSeconds: [Double]
        public var inferBatchSeconds: [Double]
        /// Process CPU seconds (all threads) of the same steps and batches: steady on a shared
        /// machine where a process sometimes gets half a core and wall time swings.
        public var trainStepCPUSeconds: [Double] = []
        public var inferBatchCPUSeconds: [Double] = []
        /// Per-layer CPU time summed over the timed training steps and inference batches (empty
        /// unless asked for).
        public var trainingLayerSeconds: [LayerProfile.Entry] = []
        public var inferenceLayerSeconds: [LayerProfile.Entry] = []

        public var medianTrainStep: Double { median(trainStepSeconds) }
        public var medianTrainStepCPU: Double { median(trainStepCPUSeconds) }
        public var medianInferBatch: Double { median(inferBatchSeconds) }
        public var medianInferBatchCPU: Double { median(inferBatchCPUSeconds) }
        public var trainingImagesPerSecond: Double { Double(batch) / medianTrainStep }
        public var inferenceImagesPerSecond: Double { inferBatchSeconds.isEmpty ? 0 : Double(batch) / median(inferBatchSeconds) }
        /// Training counts 3x the forward FLOPs (forward, input gradient, weight gradient).
        public var trainingGFLOPPerSecond: Double { 3 * forwardGFLOPPerImage * trainingImagesPerSecond }
        public var inferenceGFLOPPerSecond: Double { forwardGFLOPPerImage * inferenceImagesPerSecond }
    }

    /// The sgemm ceiling: every run's rate at n x n x n in GFLOP per wall second and per CPU second.
    public struct Ceiling: Sendable {
        public var wallRates: [Double]
        public var cpuRates: [Double]
    }

    /// Every run's sgemm rate at n x n x n, in GFLOP/s.
    public static func sgemmPeak(n: Int = 2048, runs: Int = 5) -> [Double] { sgemmCeiling(n: n, runs: runs).wallRates }

    /// Every run's sgemm rate at n x n x n, per wall second and per CPU second.
    public static func sgemmCeiling(n: Int = 2048, runs: Int = 5) -> Ceiling {
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var rates: [Double] = [], cpuRates: [Double] = []
        for _ in 0..<runs {
            let start = monotonicSeconds(), cpuStart = processCPUSeconds()
            // OpenBLAS's own threads: the library's ceiling, as reference figures measure it.
            BLAS.withLibraryThreads {
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemmSerial(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: n)
                } } }
            }
            let gflop = 2 * Double(n) * Double(n) * Double(n) / 1e9
            rates.append(gflop / (monotonicSeconds() - start))
            cpuRates.append(gflop / (processCPUSeconds() - cpuStart))
        }
        return Ceiling(wallRates: rates, cpuRates: cpuRates)
    }

    /// Times `trainSteps` training steps (forward, loss, backward, Adam) and `inferBatches`
    /// inference batches on random data, after one warm-up of each.
    public static func measure(name: String, imageSize: Int, baseFilters: Int, depth: Int = 4, batch: Int,
                               trainSteps: Int, inferBatches: Int, profileLayers: Bool = false,
                               progress: (String) -> Void = { _ in }) -> ModelFigures {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: baseFilters, depth: depth), seed: 1)
        let adam = Adam(parameters: model.trainableParameters, learningRate: 1e-4)
        var rng = SeededGenerator(seed: 2)
        var x = Tensor.zeros([batch, imageSize, imageSize, 3])
        for i in 0..<x.count { x.storage[i] = rng.nextUniform() }
        var y = Tensor.zeros([batch, imageSize, imageSize, 1])
        for i in 0..<y.count where rng.nextUniform() < 0.3 { y.storage[i] = 1 }
        func trainStep() {
            let profile = model.profile
            profile.time("zero gradients") { model.zeroGradients() }
            let p = model.forward(x, training: true)
            let loss = profile.time("loss") { Loss.bceDice.evaluate(probabilities: p, targets: y) }
            model.backward(loss.gradient)
            profile.time("adam") { adam.update() }
        }
        var figures = ModelFigures(name: name, imageSize: imageSize, baseFilters: baseFilters, batch: batch,
                                   parameters: model.parameterCount, trainableParameters: model.trainableParameterCount,
                                   forwardGFLOPPerImage: Double(model.flopsPerImage(height: imageSize, width: imageSize)) / 1e9,
                                   trainStepSeconds: [], inferBatchSeconds: [])
        trainStep()
        if profileLayers { model.profile = LayerProfile() }
        for i in 0..<trainSteps {
            let start = monotonicSeconds(), cpuStart = processCPUSeconds()
            trainStep()
            figures.trainStepSeconds.append(monotonicSeconds() - start)
            figures.trainStepCPUSeconds.append(processCPUSeconds() - cpuStart)
            progress("\(name): training step \(i + 1)/\(trainSteps) \(String(format: "%.3f", figures.trainStepSeconds.last!)) s")
        }
        if let profile = model.profile { figures.trainingLayerSeconds = profile.entries; model.profile = nil }
        if inferBatches > 0 { _ = model.forward(x, training: false) }
        if profileLayers { model.profile = LayerProfile() }
        for _ in 0..<inferBatches {
            let start = monotonicSeconds(), cpuStart = processCPUSeconds()
            _ = model.forward(x, training: false)
            figures.inferBatchSeconds.append(monotonicSeconds() - start)
            figures.inferBatchCPUSeconds.append(processCPUSeconds() - cpuStart)
        }
        if let profile = model.profile { figures.inferenceLayerSeconds = profile.entries; model.profile = nil }
        return figures
    }

    public static var peakRSSBytes: Int64 { Int64(csupport_peak_rss_bytes()) }
}

/// Median of a non-empty list (mean of the middle two for even counts).
public func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty, "median of an empty list")
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
