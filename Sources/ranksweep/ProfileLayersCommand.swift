import ArgumentParser
import Basics
import Compression
import Engine
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

    @Option(name: .customLong("model"), help: "The model to profile (a baseline written by `ranksweep train`, or a Keras U-Net).")
    var model: String
    @Option(name: .customLong("out"), help: "The profile to write (JSON).") var out: String
    @Option(name: .customLong("image-size"), help: "Input size (default: the size the model was trained at, else 128).")
    var imageSize: Int?
    @Option(help: "Images per timed forward.") var batch = LayerTiming().batch
    @Option(help: "Timed runs of each layer per round.") var runs = LayerTiming().runs
    @Option(help: "Interleaved rounds per pair (the time is the median of the rounds).") var rounds = 3
    @Option(help: "Comma-separated ranks to profile (default: powers of two below break-even, and the last rank that saves parameters).")
    var ranks: String?
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var logging: LoggingOptions

    func rankList() throws -> [Int]? {
        guard let ranks else { return nil }
        return try ranks.split(separator: ",").map { part in
            guard let r = Int(part.trimmingCharacters(in: .whitespaces)), r >= 1 else {
                throw ValidationError("--ranks: '\(part)' is not a positive integer")
            }
            return r
        }
    }

    func validate() throws {
        guard batch >= 1, runs >= 1, rounds >= 1 else { throw ValidationError("--batch, --runs and --rounds must be at least 1") }
        if let imageSize, imageSize < 1 { throw ValidationError("--image-size must be positive, got \(imageSize)") }
        _ = try rankList()
    }

    func run() throws {
        logging.apply()
        threads.apply()
        let path = UserPath.absolute(model), outPath = UserPath.absolute(out)
        let (unet, metadata) = try ModelFile.load(path: path)
        let size = imageSize ?? metadata[TrainJob.specKey].flatMap { json in
            try? JSONDecoder().decode(TrainSpec.self, from: Data(json.utf8)).imageSize
        } ?? metadata[ModelFile.imageSizeKey].flatMap(Int.init) ?? 128
        let progress = ProgressDisplay()
        let eta = ETAEstimator()
        let profile = try LatencyProfiler.profile(
            model: unet, imageSize: size, timing: LayerTiming(batch: batch, runs: runs), rounds: rounds, ranks: try rankList(),
            host: ProcessInfo.processInfo.hostName, cpu: CPUModel.name) { done, total, name in
                progress.update("profile", done: done, total: total, eta: eta.secondsLeft(done: Double(done), total: Double(total)), detail: name)
            }
        progress.clear()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(profile), to: outPath)
        progress.line("CPU \(profile.cpu); OpenBLAS \(profile.blasCore), \(profile.threads) threads; \(size)x\(size), batch \(batch)")
        let families = ["svd", "tucker2", "spatial-svd"]
        progress.line("| layer | input | full ms/img | " + families.map { "\($0): ranks faster than full" }.joined(separator: " | ") + " |")
        progress.line("|---|---|---|" + families.map { _ in "---|" }.joined())
        for layer in profile.layers {
            let cells = families.map { family -> String in
                let faster = (layer.pairs[family] ?? []).filter { $0.ms < layer.fullMs }.map { String($0.rank) }
                return faster.isEmpty ? "none" : "r=" + faster.joined(separator: ",")
            }
            progress.line(String(format: "| %@ | %d | %.3f | ", layer.name, layer.inputSize, layer.fullMs) + cells.joined(separator: " | ") + " |")
        }
        progress.line("wrote \(out)")
    }
}
