import Engine

/// Inference latency of one model: milliseconds per image over several timed runs.
public struct LatencyMeasurement: Codable, Sendable, Equatable {
    public var batch: Int
    public var imageHeight: Int
    public var imageWidth: Int
    /// OpenBLAS threads during the runs, and the kernel family it loaded (timings depend on both).
    public var blasThreads: Int
    public var blasCore: String
    public var warmupRuns: Int
    /// One entry per timed run: wall time of one batch forward divided by the batch size.
    public var samplesMsPerImage: [Double]
    /// Median of the samples: robust to the other jobs on a shared machine.
    public var medianMsPerImage: Double
    /// Fastest sample: the least disturbed by other jobs (quoted as "median (best …)").
    public var bestMsPerImage: Double
}

/// A baseline and a compressed model timed in the same run, interleaved.
public struct LatencyComparison: Codable, Sendable, Equatable {
    public var baseline: LatencyMeasurement
    public var compressed: LatencyMeasurement
    /// Baseline median / compressed median: above 1 means the compressed model is faster.
    public var speedUp: Double
}

/// Inference latency: forwards in inference mode (moving BatchNorm statistics) on a fixed random
/// batch, the same batch and BLAS threads for every model compared.
///
/// Shared machines swing by up to 1.8x between runs, so a speed-up is only quoted from
/// `compare`, which alternates the two models run by run (and which goes first), so drift in the
/// machine's load hits both alike.
public enum Latency {
    /// Median milliseconds per image of `model` over `runs` timed forwards of `batch` images of
    /// `imageSize x imageSize`, after `warmup` untimed ones (first-touch allocation, caches).
    public static func measureInferenceLatency(model: UNet, batch: Int, imageSize: Int, runs: Int,
                                               warmup: Int, seed: UInt64 = 0) throws(CompressionError) -> LatencyMeasurement {
        try check(model: model, batch: batch, imageSize: imageSize, runs: runs, warmup: warmup)
        let x = input(for: model, batch: batch, imageSize: imageSize, seed: seed)
        for _ in 0..<warmup { _ = model.forward(x, training: false) }
        let samples = (0..<runs).map { _ in time(model, x) }
        return measurement(samples, batch: batch, imageSize: imageSize, warmup: warmup)
    }

    /// Both models timed in one run, interleaved, on the same input; `speedUp = baseline / compressed`.
    public static func compareInferenceLatency(baseline: UNet, compressed: UNet, batch: Int, imageSize: Int, runs: Int,
                               warmup: Int, seed: UInt64 = 0) throws(CompressionError) -> LatencyComparison {
        try check(model: baseline, batch: batch, imageSize: imageSize, runs: runs, warmup: warmup)
        try check(model: compressed, batch: batch, imageSize: imageSize, runs: runs, warmup: warmup)
        guard baseline.config.inputChannels == compressed.config.inputChannels else {
            throw CompressionError("latency: models take \(baseline.config.inputChannels) and \(compressed.config.inputChannels) input channels")
        }
        let x = input(for: baseline, batch: batch, imageSize: imageSize, seed: seed)
        for _ in 0..<warmup {
            _ = baseline.forward(x, training: false)
            _ = compressed.forward(x, training: false)
        }
        var a: [Double] = [], b: [Double] = []
        for run in 0..<runs {
            if run % 2 == 0 {
                a.append(time(baseline, x)); b.append(time(compressed, x))
            } else {
                b.append(time(compressed, x)); a.append(time(baseline, x))
            }
        }
        let base = measurement(a, batch: batch, imageSize: imageSize, warmup: warmup)
        let comp = measurement(b, batch: batch, imageSize: imageSize, warmup: warmup)
        return LatencyComparison(baseline: base, compressed: comp, speedUp: base.medianMsPerImage / comp.medianMsPerImage)
    }


    private static func check(model: UNet, batch: Int, imageSize: Int, runs: Int, warmup: Int) throws(CompressionError) {
        guard batch >= 1 else { throw CompressionError("latency: batch must be at least 1, got \(batch)") }
        guard runs >= 1 else { throw CompressionError("latency: runs must be at least 1, got \(runs)") }
        guard warmup >= 0 else { throw CompressionError("latency: warm-up runs must not be negative, got \(warmup)") }
        let multiple = 1 << model.config.depth
        guard imageSize > 0 && imageSize % multiple == 0 else {
            throw CompressionError("latency: image size \(imageSize) must be a positive multiple of \(multiple)")
        }
    }

    private static func input(for model: UNet, batch: Int, imageSize: Int, seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        var x = Tensor.zeros([batch, imageSize, imageSize, model.config.inputChannels])
        for i in 0..<x.count { x.storage[i] = rng.nextUniform() }
        return x
    }

    /// Milliseconds per image of one inference forward of `x`.
    private static func time(_ model: UNet, _ x: Tensor) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        let y = model.forward(x, training: false)
        let elapsed = clock.now - start
        precondition(y.count == x.batch * x.height * x.width, "latency: unexpected output \(y.shape)")
        let ms = Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15
        return ms / Double(x.batch)
    }

    private static func measurement(_ samples: [Double], batch: Int, imageSize: Int, warmup: Int) -> LatencyMeasurement {
        LatencyMeasurement(batch: batch, imageHeight: imageSize, imageWidth: imageSize, blasThreads: BLAS.threads,
                           blasCore: BLAS.coreName, warmupRuns: warmup, samplesMsPerImage: samples,
                           medianMsPerImage: Engine.median(samples), bestMsPerImage: samples.min()!)
    }
}
