import Basics
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
    /// Process CPU milliseconds (all threads) per image of each sample: steady where wall time swings
    /// with the machine's load (nil in results written before it was recorded).
    public var cpuSamplesMsPerImage: [Double]?
    /// Median of each interleaved round's samples (wall), in round order (nil when not measured in rounds).
    public var roundMediansMsPerImage: [Double]?
    public var roundMediansCPUMsPerImage: [Double]?
}

/// A baseline and a compressed model timed in the same run, interleaved.
public struct LatencyComparison: Codable, Sendable, Equatable {
    public var baseline: LatencyMeasurement
    public var compressed: LatencyMeasurement
    /// Baseline median / compressed median (medians of the rounds' medians, wall time): above 1
    /// means the compressed model is faster.
    public var speedUp: Double
    /// The same ratio in process CPU time, and each round's wall ratio (their min-max is the spread).
    public var cpuSpeedUp: Double?
    public var roundSpeedUps: [Double]?

    /// Largest minus smallest round speed-up (0 with one round).
    public var spread: Double { roundSpeedUps.map { ($0.max() ?? 0) - ($0.min() ?? 0) } ?? 0 }
}

/// Inference latency: forwards in inference mode (moving BatchNorm statistics) on a fixed random
/// batch, the same batch and BLAS threads for every model compared.
///
/// Shared machines swing by up to 1.8x between runs, so a speed-up is only quoted from
/// `compareInferenceLatency`: rounds in which the two models alternate run by run (and which goes
/// first), so drift in the machine's load hits both alike; each model's figure is the median of its
/// rounds' medians, and the rounds' ratios give the spread. Every run is also timed in process CPU
/// time, which a half-core stretch does not inflate.
public enum Latency {
    /// Median milliseconds per image of `model` over `runs` timed forwards of `batch` images of
    /// `imageSize x imageSize`, after `warmup` untimed ones (first-touch allocation, caches).
    public static func measureInferenceLatency(model: UNet, batch: Int, imageSize: Int, runs: Int,
                                               warmup: Int, seed: UInt64 = 0) throws(CompressionError) -> LatencyMeasurement {
        try check(model: model, batch: batch, imageSize: imageSize, runs: runs, warmup: warmup)
        let x = input(for: model, batch: batch, imageSize: imageSize, seed: seed)
        for _ in 0..<warmup { _ = model.forward(x, training: false) }
        let samples = (0..<runs).map { _ in time(model, x) }
        return measurement(samples, rounds: nil, batch: batch, imageSize: imageSize, warmup: warmup)
    }

    /// Both models timed in one run, in `rounds` rounds of `runs` interleaved runs each, on the same
    /// input; `speedUp = baseline / compressed` of the medians of the rounds' medians.
    public static func compareInferenceLatency(baseline: UNet, compressed: UNet, batch: Int, imageSize: Int, runs: Int,
                               warmup: Int, rounds: Int = 3, seed: UInt64 = 0) throws(CompressionError) -> LatencyComparison {
        guard rounds >= 1 else { throw CompressionError("latency: rounds must be at least 1, got \(rounds)") }
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
        var a: [Sample] = [], b: [Sample] = []
        for _ in 0..<rounds {
            for run in 0..<runs {
                if run % 2 == 0 {
                    a.append(time(baseline, x)); b.append(time(compressed, x))
                } else {
                    b.append(time(compressed, x)); a.append(time(baseline, x))
                }
            }
        }
        return comparison(baseline: a, compressed: b, runs: runs, batch: batch, imageSize: imageSize, warmup: warmup)
    }

    /// The comparison of two models' samples, `runs` per round in order: each round's median per
    /// model, the median of those per model, and their ratios (wall and CPU).
    static func comparison(baseline a: [Sample], compressed b: [Sample], runs: Int, batch: Int, imageSize: Int, warmup: Int) -> LatencyComparison {
        func roundMedians(_ samples: [Sample]) -> [(wall: Double, cpu: Double)] {
            stride(from: 0, to: samples.count, by: runs).map { start in
                let round = samples[start..<min(start + runs, samples.count)]
                return (Engine.median(round.map(\.wall)), Engine.median(round.map(\.cpu)))
            }
        }
        let roundsA = roundMedians(a), roundsB = roundMedians(b)
        let base = measurement(a, rounds: roundsA, batch: batch, imageSize: imageSize, warmup: warmup)
        let comp = measurement(b, rounds: roundsB, batch: batch, imageSize: imageSize, warmup: warmup)
        let cpuBase = Engine.median(roundsA.map(\.cpu)), cpuComp = Engine.median(roundsB.map(\.cpu))
        return LatencyComparison(baseline: base, compressed: comp, speedUp: base.medianMsPerImage / comp.medianMsPerImage,
                                 cpuSpeedUp: cpuBase / cpuComp, roundSpeedUps: zip(roundsA, roundsB).map { $0.wall / $1.wall })
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

    /// Wall and process CPU milliseconds per image of one run.
    struct Sample { var wall: Double, cpu: Double }

    /// Milliseconds per image of one inference forward of `x`.
    private static func time(_ model: UNet, _ x: Tensor) -> Sample {
        let start = monotonicSeconds(), cpuStart = processCPUSeconds()
        let y = model.forward(x, training: false)
        let (wall, cpu) = (monotonicSeconds() - start, processCPUSeconds() - cpuStart)
        precondition(y.count == x.batch * x.height * x.width, "latency: unexpected output \(y.shape)")
        return Sample(wall: 1e3 * wall / Double(x.batch), cpu: 1e3 * cpu / Double(x.batch))
    }

    private static func measurement(_ samples: [Sample], rounds: [(wall: Double, cpu: Double)]?, batch: Int, imageSize: Int,
                                    warmup: Int) -> LatencyMeasurement {
        let wall = samples.map(\.wall)
        return LatencyMeasurement(batch: batch, imageHeight: imageSize, imageWidth: imageSize, blasThreads: BLAS.threads,
                                  blasCore: BLAS.coreName, warmupRuns: warmup, samplesMsPerImage: wall,
                                  medianMsPerImage: Engine.median(rounds?.map(\.wall) ?? wall), bestMsPerImage: wall.min()!,
                                  cpuSamplesMsPerImage: samples.map(\.cpu), roundMediansMsPerImage: rounds?.map(\.wall),
                                  roundMediansCPUMsPerImage: rounds?.map(\.cpu))
    }
}
