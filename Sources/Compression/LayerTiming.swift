import Basics
import Engine

/// Timing a factorised pair against the full layer it would replace, for `LatencyProfiler`.
///
/// Fewer FLOPs need not run faster: a thin pair is two GEMMs with a narrow middle (where OpenBLAS
/// is least efficient), writes an intermediate tensor, and its 3x3 half may fall below the
/// Winograd threshold that the full layer meets. Such timings are made once, on the deployment
/// target, into a `LatencyProfile` file; compression itself never reads a clock.
public struct LayerTiming: Sendable, Equatable, Codable {
    /// Images per timed forward.
    public var batch: Int
    /// Timed forwards of each layer, interleaved (full, pair, pair, full, …); the median is used.
    public var runs: Int

    public init(batch: Int = 4, runs: Int = 7) {
        self.batch = batch
        self.runs = runs
    }

    func validate() throws(CompressionError) {
        guard batch >= 1 else { throw CompressionError("layer timing: batch must be at least 1, got \(batch)") }
        guard runs >= 1 else { throw CompressionError("layer timing: runs must be at least 1, got \(runs)") }
    }

    /// Inference CPU milliseconds per image (medians) of `full` and of `pair`, each followed by
    /// `norm` folded in as the model runs it, on one random `size x size` batch. Process CPU time:
    /// on a shared machine wall time swings with other jobs, CPU time much less.
    func measure(full: any ConvolutionLayer, pair: any ConvolutionLayer, norm: BatchNorm?, size: Int,
                 seed: UInt64 = 0) -> (fullMs: Double, factorisedMs: Double) {
        var rng = SeededGenerator(seed: seed)
        var x = Tensor.zeros([batch, size, size, full.inChannels])
        for i in 0..<x.count { x.storage[i] = rng.nextUniform() }
        func run(_ layer: any ConvolutionLayer) -> Double {
            let start = processCPUSeconds()
            let y = norm.map { layer.inferenceForward(x, foldingIn: $0) } ?? layer.forward(x, training: false)
            let seconds = processCPUSeconds() - start
            precondition(y.count == batch * size * size * full.outChannels, "layer timing: unexpected output \(y.shape)")
            return 1e3 * seconds / Double(batch)
        }
        _ = run(full); _ = run(pair)   // warm-up: first-touch pages, packed buffers
        var a: [Double] = [], b: [Double] = []
        for i in 0..<runs {
            if i % 2 == 0 { a.append(run(full)); b.append(run(pair)) } else { b.append(run(pair)); a.append(run(full)) }
        }
        return (median(a), median(b))
    }
}
