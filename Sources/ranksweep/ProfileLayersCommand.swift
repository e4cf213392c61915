import ArgumentParser
import Basics
import CommandLineOptions
import Compression
import Foundation
import ModelInterop
import Pipeline

/// `ranksweep profile-layers`: times every convolution of a model against its factorised pairs on
/// this machine and writes the `LatencyProfile` that `compress --latency-profile` and a sweep's
/// `compression.latency_profile` decide by. Run it on the deployment target, once per model shape.
struct ProfileLayers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile-layers",
        abstract: "Time every layer against its factorised pairs on this machine; write a latency profile.",
        discussion: """
        Compression decides by the model alone unless it is given such a profile; then a pair the \
        profile times no faster than its full layer keeps the layer full, on every worker alike. \
        Each pair is timed interleaved with its full layer (CPU time, medians of rounds, with their \
        spread), at the ranks 1, 2, 4, ... up to the last rank that saves parameters, or --ranks.
        """)

    @Option(name: .customLong("model"), help: "The model to profile (a baseline written by `ranksweep train`, or a Keras U-Net).") var model: String
    @Option(name: .customLong("out"), help: "The profile to write (JSON).") var out: String
    @Option(name: .customLong("image-size"), help: "Input size (default: the size the model was trained at, else 128).") var imageSize: Int?
    @Option(help: "Images per timed forward.") var batch = LayerTiming().batch
    @Option(help: "Timed runs of each layer per round.") var runs = LayerTiming().runs
    @Option(help: "Interleaved rounds per pair (the time is the median of the rounds).") var rounds = 3
    @Option(help: "Comma-separated ranks to profile (default: powers of two below break-even, and the last rank that saves parameters).",
            transform: ListOption<Int>.ints("--ranks"))
    var ranks: ListOption<Int>?
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard batch >= 1, runs >= 1, rounds >= 1 else { throw ValidationError("--batch, --runs and --rounds must be at least 1") }
        if let imageSize, imageSize < 1 { throw ValidationError("--image-size must be positive, got \(imageSize)") }
    }

    func run() throws {
        logging.apply()
        threads.apply()
        let path = UserPath.absolute(model), outPath = UserPath.absolute(out)
        let (unet, metadata) = try ModelFile.load(path: path)
        let size = imageSize ?? TrainJob.recordedImageSize(metadata) ?? 128
        let progress = ProgressDisplay()
        let eta = ETAEstimator()
        let profile = try LatencyProfiler.profile(
            model: unet, imageSize: size, timing: LayerTiming(batch: batch, runs: runs), rounds: rounds, ranks: ranks?.values,
            host: ProcessInfo.processInfo.hostName, cpu: CPUInfo.modelName) { done, total, name in
                progress.update("profile", done: done, total: total, eta: eta.secondsLeft(done: Double(done), total: Double(total)), detail: name)
            }
        progress.clear()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(profile), to: outPath)
        progress.line("CPU \(profile.cpu); OpenBLAS \(profile.blasCore), \(profile.threads) threads; \(size)x\(size), batch \(batch)")
        for line in profile.fasterPairsTable { progress.line(line) }
        progress.line("wrote \(out)")
    }
}
