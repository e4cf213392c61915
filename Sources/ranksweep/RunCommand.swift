import ArgumentParser
import Basics
import CSupport
import Foundation
import Imaging
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

    @Argument(help: "Sweep file (YAML); default: the built-in pipeline on synthetic data.")
    var sweepFile: String?

    @Option(name: .customLong("local-workers"), help: "Worker processes to start (default: one per 2 cores, at least 1).")
    var localWorkers: Int?

    @Option(help: "BLAS threads per worker (default: cores / workers).")
    var threads: Int?

    @Option(name: [.customLong("state-dir"), .customLong("out-dir")],
            help: "Where the state, results and report go (default runs/sweep-DATE-TIME; reuse to resume). --out-dir is the seed's name.")
    var stateDir: String?

    @Flag(name: .customLong("run-compression"), help: "The seed's flag; compression is on anyway (see --train-only).")
    var runCompression = false

    @Flag(name: .customLong("train-only"), help: "Train the baselines only, no compression jobs.")
    var trainOnly = false

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

    @Option(name: .customLong("job-timeout"), help: "Seconds an attempt may run before it is cancelled and counted as failed.")
    var jobTimeout: Double?

    @Option(help: "Progress display: auto, plain, none.") var progress = "auto"

    @Flag(name: .customLong("allow-changes"),
          help: "On an existing state dir: run jobs whose settings the sweep file changes as new jobs beside the old ones (otherwise refused).")
    var allowChanges = false

    @OptionGroup var timingOptions: TimingOptions
    @OptionGroup var report: ReportOptions
    @OptionGroup var dashboard: DashboardOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let n = localWorkers, n < 1 || n > 256 { throw ValidationError("--local-workers must be in 1...256") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1") }
        if let b = batchSize, b < 1 { throw ValidationError("--batch-size must be at least 1") }
        guard ["auto", "plain", "none"].contains(progress) else { throw ValidationError("--progress must be auto, plain or none") }
        if let t = jobTimeout, !(t > 0 && t.isFinite) { throw ValidationError("--job-timeout must be a positive number of seconds") }
        if trainOnly && runCompression { throw ValidationError("--train-only and --run-compression contradict each other") }
        if trainOnly && model != nil { throw ValidationError("--train-only trains baselines; --model gives one and skips training") }
        if let v = imageSize, v < 8 || v > 4096 { throw ValidationError("--image-size must be in 8...4096") }
        if let v = baseFilters, v < 1 || v > 1024 { throw ValidationError("--base-filters must be in 1...1024") }
        if let v = depth, v < 1 || v > 8 { throw ValidationError("--depth must be in 1...8") }
        if let v = lr, !(v > 0 && v.isFinite) { throw ValidationError("--lr must be a positive number") }
    }

    /// The first flag given that would change the sweep (nil: none), for a resume without a sweep file.
    var sweepChangingFlag: String? {
        let given: [(Bool, String)] = [
            (svdRanks != nil, "--svd-ranks"), (arsvdTaus != nil, "--arsvd-taus"), (epochs != nil, "--epochs"),
            (batchSize != nil, "--batch-size"), (dataRoot != nil, "--data-root"), (layout.options != DatasetOptions(), "the dataset layout flags"),
            (model != nil, "--model"), (trainOnly, "--train-only"), (seeds != nil, "--seeds"), (imageSize != nil, "--image-size"),
            (baseFilters != nil, "--base-filters"), (depth != nil, "--depth"), (lr != nil, "--lr"),
        ]
        return given.first(where: { $0.0 })?.1
    }

    func run() throws {
        logging.apply()
        try SweepCLI.guarded {
            let dir = UserPath.absolute(stateDir ?? "runs/sweep-" + Self.stamp())
            // A state dir that holds a sweep, and no sweep file: resume the stored sweep as it is (never
            // the default sweep merged into it).
            let resuming = sweepFile == nil && FileManager.default.fileExists(atPath: dir + "/" + SweepStore.fileName)
            var spec: SweepSpec? = nil
            if resuming {
                if let flag = sweepChangingFlag {
                    throw ValidationError("\(flag) changes the sweep, and \(dir) holds one: resume it without \(flag), or give the sweep file (`ranksweep run FILE --state-dir \(stateDir ?? dir)`)")
                }
            } else {
                var s = try sweepFile.map { try SweepSpec.load(path: $0) } ?? SweepSpec.defaultPipeline
                if let r = svdRanks { s.svdRanks = r.values }
                if let t = arsvdTaus { s.arsvdTaus = t.values }
                if let e = epochs { s.training.epochs = e; s.axes.epochs = nil }
                if let b = batchSize { s.training.batchSize = b; s.axes.batchSize = nil }
                if let d = dataRoot { s.dataRoot = UserPath.absolute(d); s.synthetic = nil }
                if layout.options != DatasetOptions() { s.datasetOptions = layout.options }
                if let m = model { s.baselineModel = UserPath.absolute(m) }
                if trainOnly { s.svdRanks = []; s.arsvdTaus = [] }
                if let v = seeds { s.seeds = v.values }
                if let v = imageSize { s.imageSize = v; s.axes.imageSize = nil }
                if let v = baseFilters { s.model.baseFilters = v; s.axes.baseFilters = nil }
                if let v = depth { s.model.depth = v; s.axes.depth = nil }
                if let v = lr { s.training.learningRate = v; s.axes.learningRate = nil }
                if let t = jobTimeout { s.jobTimeout = t }
                // Checked before the state dir exists: bad input leaves nothing behind.
                try SweepPreflight.check(&s)
                spec = s
            }
            let workers = localWorkers ?? max(1, SweepCLI.cores / 2)
            let t = threads ?? max(1, SweepCLI.cores / workers)
            var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
            o.sweep = spec
            o.sweepSource = sweepFile ?? "the default sweep"
            if resuming { o.jobTimeout = jobTimeout }
            o.timing = timingOptions.timing
            o.allowChanges = allowChanges
            o.progress = ProgressDisplay.Mode(rawValue: progress) ?? .auto
            let feed = dashboard.feed()
            o.observer = feed
            let local = LocalWorkers(executable: SweepCLI.executable)
            var args = ["--threads", String(t), "--cache-dir", dir + "/worker-cache"]
            if let h = timingOptions.heartbeatMs { args += ["--heartbeat-ms", String(h)] }
            if let l = timingOptions.liveness { args += ["--liveness", String(l)] }
            let workerArgs = args
            o.onBound = { endpoint in
                do { try local.start(count: workers, endpoint: endpoint, extraArgs: workerArgs, logDir: dir + "/logs") } catch {
                    Log.error("\(error)")
                }
            }
            // Ctrl-C: the workers hand back first (checkpoints included), then the coordinator leaves.
            o.onStop = { local.terminateAll() }
            Log.role = "coordinator"
            _ = csupport_install_stop_handlers()
            print("sweep state in \(dir); \(workers) local worker(s) x \(t) thread(s); worker logs in \(dir)/logs")
            let c = try Coordinator(options: o, onSweepComplete: SweepHooks.sweepCompleted, reporter: report.reporter(stateDir: o.stateDir))
            let server = try dashboard.start(stateDir: o.stateDir, feed: feed)
            let summary = try c.run()
            server?.stop(after: summary.interrupted ? 0 : 1.5)
            local.stop(within: summary.interrupted ? 0.5 : 5)
            if summary.interrupted { try exitIfInterrupted(); throw ExitCode(130) }
            if summary.failed > 0 { throw ExitCode(2) }
        }
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
