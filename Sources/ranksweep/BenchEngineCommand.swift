import ArgumentParser
import Basics
import Engine
import Foundation

/// `ranksweep bench engine`: the engine's speed on the reference U-Nets next to this machine's
/// own sgemm ceiling and, when a Python with TensorFlow is at hand, next to TensorFlow on the same
/// model, all measured in the same run.
///
/// The machines are shared and noisy: a process sometimes gets only half a core, and wall-time
/// ratios from one run swing by a third. So every step is timed in wall time and in process CPU
/// time (all threads), the two sides run in interleaved rounds (engine, TensorFlow, then
/// TensorFlow, engine, …) so that both see the same stretches of the run, and the figures quoted
/// are medians of the rounds' medians, with both ratios.
struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Benchmark training and inference of unet-small and unet-paper against the sgemm peak and TensorFlow.")

    @Option(help: "Timed training steps for unet-small per round.") var steps = 10
    @Option(help: "Timed training steps for unet-paper per round (0 skips it).") var paperSteps = 3
    @Option(help: "Interleaved rounds (engine, TensorFlow, …); medians are taken over the rounds' medians.") var rounds = 3
    @Option(help: "Engine threads (default: OpenBLAS's own choice, normally all cores).") var threads: Int?
    @Flag(help: "Also print where the time goes, layer by layer (first round).") var layers = false
    @Option(help: "Python with TensorFlow to measure in the same run (default: $RANKSWEEP_TENSORFLOW_PYTHON, else ~/.cache/ranksweep/tf-venv from `make tensorflow` when present).")
    var tensorflow: String?
    @Flag(help: "Skip the TensorFlow comparison.") var noTensorflow = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard paperSteps >= 0 else { throw ValidationError("--paper-steps cannot be negative") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try SweepCLI.guarded {
            if let threads { BLAS.setThreads(threads) }
            let peer = noTensorflow ? nil : try TensorFlowPeer.locate(python: tensorflow)
            print("CPU \(CPUModel.name), \(ProcessInfo.processInfo.activeProcessorCount) cores online")
            print("OpenBLAS core \(BLAS.coreName), \(BLAS.threads) threads; engine choices: \(EngineChoices.current.summary)")
            let ceiling = EngineBenchmark.sgemmCeiling()
            let peak = Ceiling(wall: median(ceiling.wallRates), cpu: median(ceiling.cpuRates))
            print(String(format: "sgemm 2048^3: median %.0f GFLOP/s wall (best %.0f), %.0f GFLOP per CPU-second",
                         peak.wall, ceiling.wallRates.max()!, peak.cpu))
            try measureSmall(peer: peer, peak: peak)
            if paperSteps > 0 { try measurePaper(peer: peer, peak: peak) }
            print(String(format: "peak RSS %.0f MiB", Double(EngineBenchmark.peakRSSBytes) / 1048576))
        }
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
            print("  round \(round + 1)/\(rounds): " + String(format: "engine step %.3f s wall, %.3f CPU-s", mine.trainWall.last!, mine.trainCPU.last!)
                  + (theirs.map { String(format: "; TensorFlow step %.3f s wall, %.3f CPU-s", $0.trainWall.last!, $0.trainCPU.last!) } ?? ""))
        }
        return (mine, theirs, figures, peakRss)
    }

    private func measureSmall(peer: TensorFlowPeer?, peak: Ceiling) throws {
        let inferBatches = max(5, steps)
        print("unet-small 128x128x3 base 16 depth 4, batch 8, \(rounds) interleaved rounds of \(steps) training steps and \(inferBatches) inference batches:")
        let (mine, theirs, figures, tfRss) = try interleaved({ round in
            EngineBenchmark.measure(name: "unet-small", imageSize: 128, baseFilters: 16, batch: 8,
                                    trainSteps: steps, inferBatches: inferBatches, profileLayers: layers && round == 0)
        }, peer.map { p in { try p.measure(model: "small", steps: steps, inferBatches: inferBatches, threads: BLAS.threads) } })
        let small = figures[0]
        let flop = small.forwardGFLOPPerImage * Double(small.batch)
        print("  parameters \(small.parameters) (\(small.trainableParameters) trainable), forward \(String(format: "%.3f", small.forwardGFLOPPerImage)) GFLOP/image")
        report(side: "ranksweep ", mine, batch: small.batch, forwardGFLOP: flop, peak: peak)
        print(String(format: "  peak RSS so far %.0f MiB", Double(EngineBenchmark.peakRSSBytes) / 1048576))
        if let theirs {
            report(side: "TensorFlow", theirs, batch: small.batch, forwardGFLOP: flop, peak: peak)
            if let tfRss { print(String(format: "  TensorFlow peak RSS %.0f MiB", tfRss)) }
            print(String(format: "  ranksweep / TensorFlow: training %.2fx wall, %.2fx CPU-normalised; inference %.2fx wall, %.2fx CPU-normalised",
                         median(theirs.trainWall) / median(mine.trainWall), median(theirs.trainCPU) / median(mine.trainCPU),
                         median(theirs.inferWall) / median(mine.inferWall), median(theirs.inferCPU) / median(mine.inferCPU)))
        } else {
            print("  (no TensorFlow in this run: `make tensorflow`, or --tensorflow PYTHON)")
        }
        if layers {
            printLayerTable("a training step", small.trainingLayerSeconds, per: small.trainStepSeconds.count)
            printLayerTable("an inference batch", small.inferenceLayerSeconds, per: small.inferBatchSeconds.count)
        }
    }

    private func measurePaper(peer: TensorFlowPeer?, peak: Ceiling) throws {
        print("unet-paper 256x256x3 base 64 depth 4, batch 4, \(rounds) interleaved rounds of \(paperSteps) training steps:")
        let (mine, theirs, figures, _) = try interleaved({ round in
            EngineBenchmark.measure(name: "unet-paper", imageSize: 256, baseFilters: 64, batch: 4,
                                    trainSteps: paperSteps, inferBatches: 0, profileLayers: layers && round == 0)
        }, peer.map { p in { try p.measure(model: "paper", steps: paperSteps, inferBatches: 0, threads: BLAS.threads) } })
        let paper = figures[0]
        let flop = paper.forwardGFLOPPerImage * Double(paper.batch)
        print("  parameters \(paper.parameters), forward \(String(format: "%.2f", paper.forwardGFLOPPerImage)) GFLOP/image")
        report(side: "ranksweep ", mine, batch: paper.batch, forwardGFLOP: flop, peak: peak)
        if let theirs {
            report(side: "TensorFlow", theirs, batch: paper.batch, forwardGFLOP: flop, peak: peak)
            print(String(format: "  ranksweep / TensorFlow: training %.2fx wall, %.2fx CPU-normalised",
                         median(theirs.trainWall) / median(mine.trainWall), median(theirs.trainCPU) / median(mine.trainCPU)))
        }
        if layers { printLayerTable("a unet-paper training step", paper.trainingLayerSeconds, per: paper.trainStepSeconds.count) }
    }

    /// One side's medians of round medians, the rounds' spread, and the share of the sgemm ceiling
    /// (per wall second and per CPU second; training counts 3x the forward FLOPs).
    private func report(side: String, _ r: Rounds, batch: Int, forwardGFLOP: Double, peak: Ceiling) {
        let (wall, cpu) = (median(r.trainWall), median(r.trainCPU))
        print(String(format: "  %@ training  %6.1f images/s; step %.3f s wall (rounds %.3f-%.3f), %.3f CPU-s (rounds %.3f-%.3f); %.0f%% of sgemm ceiling wall, %.0f%% per CPU-s",
                     side, Double(batch) / wall, wall, r.trainWall.min()!, r.trainWall.max()!, cpu, r.trainCPU.min()!, r.trainCPU.max()!,
                     100 * 3 * forwardGFLOP / wall / peak.wall, 100 * 3 * forwardGFLOP / cpu / peak.cpu))
        guard !r.inferWall.isEmpty else { return }
        let (iwall, icpu) = (median(r.inferWall), median(r.inferCPU))
        print(String(format: "  %@ inference %6.1f images/s; batch %.3f s wall (rounds %.3f-%.3f), %.3f CPU-s; %.0f%% of sgemm ceiling wall, %.0f%% per CPU-s",
                     side, Double(batch) / iwall, iwall, r.inferWall.min()!, r.inferWall.max()!, icpu,
                     100 * forwardGFLOP / iwall / peak.wall, 100 * forwardGFLOP / icpu / peak.cpu))
    }

    /// CPU milliseconds per step for each layer call, largest first, with its share of the step and
    /// the threads it kept busy (CPU over wall time).
    private func printLayerTable(_ what: String, _ entries: [LayerProfile.Entry], per count: Int) {
        guard count > 0, !entries.isEmpty else { return }
        let steps = Double(count)
        let total = entries.reduce(0) { $0 + $1.seconds }, totalWall = entries.reduce(0) { $0 + $1.wallSeconds }
        print(String(format: "  where %@ goes (%.1f CPU-ms in timed layers, %.1f ms wall; CPU-ms, share, threads busy):",
                     what, 1000 * total / steps, 1000 * totalWall / steps))
        for entry in entries.sorted(by: { $0.seconds > $1.seconds }) {
            print("    " + entry.key.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: " %8.2f ms  %5.1f%%  %4.2f", 1000 * entry.seconds / steps, 100 * entry.seconds / total,
                           entry.seconds / max(entry.wallSeconds, 1e-9)))
        }
    }
}

/// The CPU's model name, as /proc/cpuinfo gives it: printed with every figure.
enum CPUModel {
    static var name: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
