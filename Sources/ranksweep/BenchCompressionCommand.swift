import ArgumentParser
import Basics
import Compression
import Engine

/// `ranksweep bench compression`: the seed's sweep grid on randomly initialised U-Nets (by default
/// unet-small, 3 channels, and the held-out-style 1-channel model, both base 16) — parameter and
/// FLOP reduction (compare a numpy count of the same model) and the inference speed-up, baseline
/// and compressed timed in interleaved rounds in the same run, next to the FLOP ratio. Every eligible
/// layer is factorised (as `compress` does without a latency profile), unless `--latency-profile`
/// gives one. Each model is
/// first timed against an unchanged copy of itself: that self-check should read 1.00x ± 0.03, and
/// tells how far the other figures can be trusted on this machine at this moment.
struct BenchCompression: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compression",
        abstract: "Reduction and latency speed-up of compression settings (default: the seed grid) on random U-Nets.",
        discussion: """
        --methods takes NAME=SETTING items: svd=50, arsvd=0.9, tucker2=16, tucker2=0.25, tucker2=auto, tucker2=tau0.9,
        spatial-svd=8. --min-flop-cut 30 times only the settings that cut FLOPs by at least 30% (the others are listed untimed).
        """)

    @Option(name: .customLong("base-filters"), help: "Base filters (16 = unet-small).") var baseFilters = 16
    @Option(name: .customLong("image-size"), help: "Input size.") var imageSize = 128
    @Option(name: .customLong("input-channels"), parsing: .upToNextOption,
            help: "Input channels of each model benchmarked (3 = unet-small's RGB, 1 = the held-out-style gray model).")
    var inputChannels: [Int] = [3, 1]
    @Option(help: "Timed runs per model in each round.") var runs = 6
    @Option(help: "Interleaved rounds (the figure is the median of the rounds' medians).") var rounds = 5
    @Option(help: "Batch size of the latency runs.") var batch = 8
    @Option(name: .customLong("latency-profile"), help: "Keep the layers this profile (`ranksweep profile-layers` of the same model shape) times faster full.")
    var latencyProfile: String?
    @Option(help: "Comma-separated NAME=SETTING (default: svd 50/100/150, arsvd 0.95/0.9/0.85).")
    var methods = "svd=50,svd=100,svd=150,arsvd=0.95,arsvd=0.9,arsvd=0.85"
    @Option(name: .customLong("min-flop-cut"), help: "Time only settings whose FLOP reduction is at least this percentage.") var minFlopCut = 0.0

    func validate() throws {
        guard baseFilters >= 1, runs >= 1, rounds >= 1, batch >= 1, !inputChannels.isEmpty, inputChannels.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--base-filters, --runs, --rounds, --batch and --input-channels must be positive")
        }
        guard imageSize >= 16, imageSize % 16 == 0 else { throw ValidationError("--image-size must be a multiple of 16") }
        guard minFlopCut >= 0, minFlopCut < 100 else { throw ValidationError("--min-flop-cut must be in [0, 100)") }
        do { _ = try CompressionMethod.settingsList(methods) } catch let e as CompressionError { throw ValidationError("--methods: \(e.message)") }
    }

    func run() throws {
        try SweepCLI.guarded {
            print("CPU \(CPUInfo.modelName); OpenBLAS \(BLAS.coreName), \(BLAS.threads) threads")
            var bench = CompressionBenchmark { print($0) }
            (bench.baseFilters, bench.imageSize, bench.runs, bench.rounds, bench.batch) = (baseFilters, imageSize, runs, rounds, batch)
            bench.minFlopCut = minFlopCut
            bench.methods = try CompressionMethod.settingsList(methods)
            bench.latencyProfile = try latencyProfile.map { try LatencyProfile.read(path: UserPath.absolute($0)) }
            for channels in inputChannels { try bench.run(inputChannels: channels) }
        }
    }
}
