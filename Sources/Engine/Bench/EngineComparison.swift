import Basics
import Foundation

/// `ranksweep bench engine`'s measurements: the engine's speed on the reference U-Nets next to
/// this machine's own sgemm ceiling and, when a Python with TensorFlow is at hand, next to
/// TensorFlow on the same model, all in the same run.
///
/// The machines are shared and noisy: a process sometimes gets only half a core, and wall-time
/// ratios from one run swing by a third. So every step is timed in wall time and in process CPU
/// time (all threads), the two sides run in interleaved rounds (engine, TensorFlow, then
/// TensorFlow, engine, …) so that both see the same stretches of the run, and the figures quoted
/// are medians of the rounds' medians, with both ratios.
public struct EngineComparison {
    /// Timed training steps for unet-small per round.
    public var steps = 10
    /// Timed training steps for unet-paper per round (0 skips it).
    public var paperSteps = 3
    /// Interleaved rounds (engine, TensorFlow, …); medians are taken over the rounds' medians.
    public var rounds = 3
    /// Also say where the time goes, layer by layer (first round).
    public var layers = false
    /// TensorFlow measured in the same run, when there is one.
    public var peer: TensorFlowPeer?
    /// Where the lines go.
    private let say: (String) -> Void

    public init(steps: Int, paperSteps: Int, rounds: Int, layers: Bool, peer: TensorFlowPeer?, say: @escaping (String) -> Void) {
        (self.steps, self.paperSteps, self.rounds, self.layers, self.peer, self.say) = (steps, paperSteps, rounds, layers, peer, say)
    }

    /// Measures and reports everything.
    public func run() throws {
        say("CPU \(CPUInfo.modelName), \(ProcessInfo.processInfo.activeProcessorCount) cores online")
        say("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads; engine choices: \(EngineChoices.current.summary)")
        let ceiling = EngineBenchmark.sgemmCeiling()
        let peak = Ceiling(wall: median(ceiling.wallRates), cpu: median(ceiling.cpuRates))
        say(String(format: "sgemm 2048^3: median %.0f GFLOP/s wall (best %.0f), %.0f GFLOP per CPU-second",
                   peak.wall, ceiling.wallRates.max()!, peak.cpu))
        try measureSmall(peer: peer, peak: peak)
        if paperSteps > 0 { try measurePaper(peer: peer, peak: peak) }
        say(String(format: "peak RSS %.0f MiB", Double(EngineBenchmark.peakRSSBytes) / 1048576))
    }

    struct Ceiling { var wall: Double, cpu: Double }

    /// One side's medians, one entry per round.
    struct Rounds {
        var trainWall: [Double] = [], trainCPU: [Double] = [], inferWall: [Double] = [], inferCPU: [Double] = []

        mutating func add(train wall: [Double], _ cpu: [Double], infer iwall: [Double], _ icpu: [Double]) {
            trainWall.append(median(wall)); trainCPU.append(median(cpu))
            if !iwall.isEmpty { inferWall.append(median(iwall)); inferCPU.append(median(icpu)) }
        }
    }

    /// Runs `engine` and `peer` alternately, `rounds` times, the order swapped every round.
    private func interleaved(_ engine: (Int) -> EngineBenchmark.ModelFigures,
                             _ peer: (() throws -> TensorFlowPeer.Figures)?) throws -> (Rounds, Rounds?, [EngineBenchmark.ModelFigures], Double?) {
        var mine = Rounds(), theirs: Rounds? = peer == nil ? nil : Rounds()
        var figures: [EngineBenchmark.ModelFigures] = []
        var peakRss: Double?
        for round in 0..<rounds {
            func runEngine() {
                let f = engine(round)
                mine.add(train: f.trainStepSeconds, f.trainStepCPUSeconds, infer: f.inferBatchSeconds, f.inferBatchCPUSeconds)
                figures.append(f)
            }
            func runPeer() throws {
                guard let peer else { return }
                let t = try peer()
                theirs!.add(train: t.trainStepSeconds, t.trainStepCPUSeconds, infer: t.inferBatchSeconds, t.inferBatchCPUSeconds)
                peakRss = max(peakRss ?? 0, t.peakRssMib ?? 0)
            }
            if round % 2 == 0 { runEngine(); try runPeer() } else { try runPeer(); runEngine() }
            say("  round \(round + 1)/\(rounds): " + String(format: "engine step %.3f s wall, %.3f CPU-s", mine.trainWall.last!, mine.trainCPU.last!)
                  + (theirs.map { String(format: "; TensorFlow step %.3f s wall, %.3f CPU-s", $0.trainWall.last!, $0.trainCPU.last!) } ?? ""))
        }
        return (mine, theirs, figures, peakRss)
    }

    private func measureSmall(peer: TensorFlowPeer?, peak: Ceiling) throws {
        let inferBatches = max(5, steps)
        say("unet-small 128x128x3 base 16 depth 4, batch 8, \(rounds) interleaved rounds of \(steps) training steps and \(inferBatches) inference batches:")
        let (mine, theirs, figures, tfRss) = try interleaved({ round in
            EngineBenchmark.measure(name: "unet-small", imageSize: 128, baseFilters: 16, batch: 8,
                                    trainSteps: steps, inferBatches: inferBatches, profileLayers: layers && round == 0)
        }, peer.map { p in { try p.measure(model: "small", steps: steps, inferBatches: inferBatches, threads: BLAS.threads) } })
        let small = figures[0]
        let flop = small.forwardGFLOPPerImage * Double(small.batch)
        say("  parameters \(small.parameters) (\(small.trainableParameters) trainable), forward \(String(format: "%.3f", small.forwardGFLOPPerImage)) GFLOP/image")
        report(side: "ranksweep ", mine, batch: small.batch, forwardGFLOP: flop, peak: peak)
        say(String(format: "  peak RSS so far %.0f MiB", Double(EngineBenchmark.peakRSSBytes) / 1048576))
        if let theirs {
            report(side: "TensorFlow", theirs, batch: small.batch, forwardGFLOP: flop, peak: peak)
            if let tfRss { say(String(format: "  TensorFlow peak RSS %.0f MiB", tfRss)) }
            say(String(format: "  ranksweep / TensorFlow: training %.2fx wall, %.2fx CPU-normalised; inference %.2fx wall, %.2fx CPU-normalised",
                         median(theirs.trainWall) / median(mine.trainWall), median(theirs.trainCPU) / median(mine.trainCPU),
                         median(theirs.inferWall) / median(mine.inferWall), median(theirs.inferCPU) / median(mine.inferCPU)))
        } else {
            say("  (no TensorFlow in this run: `make tensorflow`, or --tensorflow PYTHON)")
        }
        if layers {
            printLayerTable("a training step", small.trainingLayerSeconds, per: small.trainStepSeconds.count)
            printLayerTable("an inference batch", small.inferenceLayerSeconds, per: small.inferBatchSeconds.count)
        }
    }

    private func measurePaper(peer: TensorFlowPeer?, peak: Ceiling) throws {
        say("unet-paper 256x256x3 base 64 depth 4, batch 4, \(rounds) interleaved rounds of \(paperSteps) training steps:")
        let (mine, theirs, figures, _) = try interleaved({ round in
            EngineBenchmark.measure(name: "unet-paper", imageSize: 256, baseFilters: 64, batch: 4,
                                    trainSteps: paperSteps, inferBatches: 0, profileLayers: layers && round == 0)
        }, peer.map { p in { try p.measure(model: "paper", steps: paperSteps, inferBatches: 0, threads: BLAS.threads) } })
        let paper = figures[0]
        let flop = paper.forwardGFLOPPerImage * Double(paper.batch)
        say("  parameters \(paper.parameters), forward \(String(format: "%.2f", paper.forwardGFLOPPerImage)) GFLOP/image")
        report(side: "ranksweep ", mine, batch: paper.batch, forwardGFLOP: flop, peak: peak)
        if let theirs {
            report(side: "TensorFlow", theirs, batch: paper.batch, forwardGFLOP: flop, peak: peak)
            say(String(format: "  ranksweep / TensorFlow: training %.2fx wall, %.2fx CPU-normalised",
                         median(theirs.trainWall) / median(mine.trainWall), median(theirs.trainCPU) / median(mine.trainCPU)))
        }
        if layers { printLayerTable("a unet-paper training step", paper.trainingLayerSeconds, per: paper.trainStepSeconds.count) }
    }

    /// One side's medians of round medians, the rounds' spread, and the share of the sgemm ceiling
    /// (per wall second and per CPU second; training counts 3x the forward FLOPs).
    private func report(side: String, _ r: Rounds, batch: Int, forwardGFLOP: Double, peak: Ceiling) {
        let (wall, cpu) = (median(r.trainWall), median(r.trainCPU))
        say(String(format: "  %@ training  %6.1f images/s; step %.3f s wall (rounds %.3f-%.3f), %.3f CPU-s (rounds %.3f-%.3f); %.0f%% of sgemm ceiling wall, %.0f%% per CPU-s",
                     side, Double(batch) / wall, wall, r.trainWall.min()!, r.trainWall.max()!, cpu, r.trainCPU.min()!, r.trainCPU.max()!,
                     100 * 3 * forwardGFLOP / wall / peak.wall, 100 * 3 * forwardGFLOP / cpu / peak.cpu))
        guard !r.inferWall.isEmpty else { return }
        let (iwall, icpu) = (median(r.inferWall), median(r.inferCPU))
        say(String(format: "  %@ inference %6.1f images/s; batch %.3f s wall (rounds %.3f-%.3f), %.3f CPU-s; %.0f%% of sgemm ceiling wall, %.0f%% per CPU-s",
                     side, Double(batch) / iwall, iwall, r.inferWall.min()!, r.inferWall.max()!, icpu,
                     100 * forwardGFLOP / iwall / peak.wall, 100 * forwardGFLOP / icpu / peak.cpu))
    }

    /// CPU milliseconds per step for each layer call, largest first, with its share of the step and
    /// the threads it kept busy (CPU over wall time).
    private func printLayerTable(_ what: String, _ entries: [LayerProfile.Entry], per count: Int) {
        guard count > 0, !entries.isEmpty else { return }
        let steps = Double(count)
        let total = entries.reduce(0) { $0 + $1.seconds }, totalWall = entries.reduce(0) { $0 + $1.wallSeconds }
        say(String(format: "  where %@ goes (%.1f CPU-ms in timed layers, %.1f ms wall; CPU-ms, share, threads busy):",
                     what, 1000 * total / steps, 1000 * totalWall / steps))
        for entry in entries.sorted(by: { $0.seconds > $1.seconds }) {
            say("    " + entry.key.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: " %8.2f ms  %5.1f%%  %4.2f", 1000 * entry.seconds / steps, 100 * entry.seconds / total,
                           entry.seconds / max(entry.wallSeconds, 1e-9)))
        }
    }
}
