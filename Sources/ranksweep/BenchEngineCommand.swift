import ArgumentParser
import Engine

/// `ranksweep bench engine`: parses and calls `EngineComparison` (Engine/Bench).
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
            let peer = noTensorflow ? nil : try TensorFlowPeer.locate(python: tensorflow, executable: SweepCLI.executable)
            try EngineComparison(steps: steps, paperSteps: paperSteps, rounds: rounds, layers: layers, peer: peer) { print($0) }.run()
        }
    }
}
