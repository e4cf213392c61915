import ArgumentParser
import Basics
import CommandLineOptions
import Foundation
import Sweep
import SweepJobs

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a whole sweep on this machine: a coordinator on loopback plus local worker processes.",
        discussion: """
        With no sweep file: the full pipeline on the built-in synthetic set. Flags override the file's keys. \
        The seed's spelling works as written: `ranksweep run --data_root D --epochs 100 --batch_size 16 \
        --svd_ranks "50,100,150" --arsvd_taus "0.95,0.9,0.85" --run_compression --out_dir ./results`. Unlike \
        the seed, compression runs without --run_compression too (a sweep is the point of `run`); \
        --train-only trains the baselines alone.
        """)

    @Argument(help: "Sweep file (YAML); default: the built-in pipeline on synthetic data.") var sweepFile: String?
    @Option(name: .customLong("local-workers"), help: "Worker processes to start (default: one per 2 cores, at least 1).") var localWorkers: Int?
    @Option(help: "BLAS threads per worker (default: cores / workers).") var threads: Int?
    @Option(name: [.customLong("state-dir"), .customLong("out-dir")],
            help: "Where the state, results and report go (default runs/sweep-DATE-TIME; reuse to resume). --out-dir is the seed's name.")
    var stateDir: String?
    @Flag(name: .customLong("run-compression"), help: "The seed's flag; compression is on anyway (see --train-only).") var runCompression = false
    @Flag(name: .customLong("train-only"), help: "Train the baselines only, no compression jobs.") var trainOnly = false
    @Option(name: .customLong("svd-ranks"), help: "SVD ranks, e.g. \"50,100,150\".", transform: ListOption<Int>.ints("--svd-ranks"))
    var svdRanks: ListOption<Int>?
    @Option(name: .customLong("arsvd-taus"), help: "ARSVD energy thresholds in (0, 1], e.g. \"0.95,0.9,0.85\".",
            transform: ListOption<Double>.fractions("--arsvd-taus"))
    var arsvdTaus: ListOption<Double>?
    @Option(help: "Baseline training epochs.") var epochs: Int?
    @Option(name: .customLong("image-size"), help: "Model input size (square; a multiple of 2^depth).") var imageSize: Int?
    @Option(name: .customLong("base-filters"), help: "Filters of the U-Net's first level.") var baseFilters: Int?
    @Option(help: "Pooling levels of the U-Net.") var depth: Int?
    @Option(help: "Baseline learning rate (Adam).") var lr: Float?
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize: Int?
    @Option(name: .customLong("data-root"), help: "Dataset folder (default: synthetic).") var dataRoot: String?
    @OptionGroup var layout: DatasetLayoutOptions
    @Option(name: [.customLong("model"), .customLong("model-path")], help: "Existing baseline model (skips training).") var model: String?
    @Option(help: "Seeds, e.g. \"42,43\".", transform: ListOption<Int>.ints("--seeds")) var seeds: ListOption<Int>?
    @OptionGroup var coordinator: CoordinatorRunOptions

    func validate() throws {
        if let n = localWorkers, n < 1 || n > 256 { throw ValidationError("--local-workers must be in 1...256") }
        if trainOnly && runCompression { throw ValidationError("--train-only and --run-compression contradict each other") }
        if let problem = overrides.problem { throw ValidationError(problem) }
    }

    /// The flags that replace the sweep file's settings.
    var overrides: SweepOverrides {
        var o = SweepOverrides()
        (o.svdRanks, o.arsvdTaus, o.epochs, o.batchSize) = (svdRanks?.values, arsvdTaus?.values, epochs, batchSize)
        (o.dataRoot, o.baselineModel) = (dataRoot.map { UserPath.absolute($0) }, model.map { UserPath.absolute($0) })
        o.datasetOptions = layout.options == DatasetOptions() ? nil : layout.options
        (o.trainOnly, o.seeds, o.imageSize, o.baseFilters, o.depth, o.learningRate) = (trainOnly, seeds?.values, imageSize, baseFilters, depth, lr)
        o.jobTimeout = coordinator.jobTimeout
        return o
    }

    func run() throws {
        coordinator.logging.apply()
        try SweepCLI.guarded {
            let dir = UserPath.absolute(stateDir ?? "runs/sweep-" + Self.stamp())
            // A state dir that holds a sweep, and no sweep file: resume the stored sweep as it is (never
            // the default sweep merged into it).
            let resuming = sweepFile == nil && FileManager.default.fileExists(atPath: dir + "/" + SweepStore.fileName)
            var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
            if resuming {
                if let flag = overrides.firstSweepChangingFlag {
                    throw ValidationError("\(flag) changes the sweep, and \(dir) holds one: resume it without \(flag), or give the sweep file (`ranksweep run FILE --state-dir \(stateDir ?? dir)`)")
                }
                o.jobTimeout = coordinator.jobTimeout
            } else {
                var spec = try (sweepFile.map { try SweepSpec.load(path: $0) } ?? SweepSpec.defaultPipeline).applying(overrides)
                // Checked before the state dir exists: bad input leaves nothing behind.
                try SweepPreflight.check(&spec)
                o.sweep = spec
            }
            o.sweepSource = sweepFile ?? "the default sweep"
            let workers = localWorkers ?? max(1, SweepCLI.cores / 2)
            let t = threads ?? max(1, SweepCLI.cores / workers)
            let local = LocalWorkers(executable: SweepCLI.executable)
            local.attach(to: &o, count: workers, threads: t, timing: coordinator.timingOptions.timing)
            print("sweep state in \(dir); \(workers) local worker(s) x \(t) thread(s); worker logs in \(dir)/logs")
            try coordinator.serve(o, localWorkers: local)
        }
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
