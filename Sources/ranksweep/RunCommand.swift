import ArgumentParser
import Basics
import CSupport
import Foundation
import Imaging
import Sweep

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a whole sweep on this machine: a coordinator on loopback plus local worker processes.",
        discussion: """
        With no sweep file: the full pipeline on the built-in synthetic set. Flags override the file's keys.
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

    @Option(name: .customLong("svd-ranks"), help: "SVD ranks, e.g. \"50,100,150\".") var svdRanks: String?
    @Option(name: .customLong("arsvd-taus"), help: "ARSVD energy thresholds, e.g. \"0.95,0.9,0.85\".") var arsvdTaus: String?
    @Option(help: "Baseline training epochs.") var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize: Int?
    @Option(name: .customLong("data-root"), help: "Dataset folder (default: synthetic).") var dataRoot: String?
    @OptionGroup var layout: DatasetLayoutOptions
    @Option(name: [.customLong("model"), .customLong("model-path")], help: "Existing baseline model (skips training).") var model: String?
    @Option(help: "Seeds, e.g. \"42,43\".") var seeds: String?

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
    }

    func run() throws {
        logging.apply()
        try SweepCLI.guarded {
            var spec = try sweepFile.map { try SweepSpec.load(path: $0) } ?? SweepSpec.defaultPipeline
            if let s = svdRanks { spec.svdRanks = try ListFlag.ints(s, flag: "--svd-ranks") }
            if let t = arsvdTaus { spec.arsvdTaus = try ListFlag.doubles(t, flag: "--arsvd-taus") }
            if let e = epochs { spec.training.epochs = e; spec.axes.epochs = nil }
            if let b = batchSize { spec.training.batchSize = b; spec.axes.batchSize = nil }
            if let d = dataRoot { spec.dataRoot = UserPath.absolute(d); spec.synthetic = nil }
            if layout.options != DatasetOptions() { spec.datasetOptions = layout.options }
            if let m = model { spec.baselineModel = UserPath.absolute(m) }
            if trainOnly { spec.svdRanks = []; spec.arsvdTaus = [] }
            if let s = seeds { spec.seeds = try ListFlag.ints(s, flag: "--seeds") }
            if let t = jobTimeout { spec.jobTimeout = t }
            let workers = localWorkers ?? max(1, SweepCLI.cores / 2)
            let t = threads ?? max(1, SweepCLI.cores / workers)
            // Checked before the state dir exists: bad input leaves nothing behind.
            try SweepPreflight.check(&spec)
            let dir = UserPath.absolute(stateDir ?? "runs/sweep-" + Self.stamp())
            var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
            o.sweep = spec
            o.sweepSource = sweepFile ?? "the default sweep"
            o.timing = timingOptions.timing
            o.allowChanges = allowChanges
            o.progress = progress == "plain" ? .plain : progress == "none" ? .none : .auto
            let feed = dashboard.feed()
            o.observer = feed
            let local = LocalWorkers()
            var args = ["--threads", String(t), "--cache-dir", dir + "/worker-cache"]
            if let h = timingOptions.heartbeatMs { args += ["--heartbeat-ms", String(h)] }
            if let l = timingOptions.liveness { args += ["--liveness", String(l)] }
            let workerArgs = args
            o.onBound = { endpoint in
                do { try local.start(count: workers, endpoint: endpoint, extraArgs: workerArgs, logDir: dir + "/logs") } catch {
                    Log.error("\(error)")
                }
            }
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
