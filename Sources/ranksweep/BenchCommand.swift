import ArgumentParser
import CommandLineOptions
import Sweep
import SweepJobs

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print figures (never timed assertions).",
        subcommands: [BenchEngine.self, BenchCompression.self, BenchCoordinatorCommand.self])
}

/// Dispatch throughput of the real coordinator (SQLite state on) with local worker processes.
struct BenchCoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "No-op jobs through the real coordinator with SQLite on: jobs/s and median round trip.")

    @Option(help: "No-op jobs per run.") var jobs = 20_000
    @Option(help: "Local worker processes.") var workers = 2
    @Option(help: "Jobs outstanding per worker, comma-separated, one run each (default: 1,8).", transform: ListOption<Int>.ints("--outstanding"))
    var outstanding = ListOption<Int>(values: [1, 8])
    @OptionGroup var dashboard: DashboardOptions
    @Option(name: .customLong("simulated-workers"),
            help: "Instead: this many simulated workers (one process, one poll loop, real sockets) against a coordinator process; comma-separated for several runs.",
            transform: ListOption<Int>.ints("--simulated-workers"))
    var simulatedWorkers: ListOption<Int>?
    @Option(name: .customLong("job-seconds"), help: "With --simulated-workers: seconds each simulated job takes.") var jobSeconds = 0.5
    @Option(name: .customLong("jobs-per-worker"), help: "With --simulated-workers: jobs per simulated worker.") var jobsPerWorker = 20

    func run() throws {
        try SweepCLI.guarded {
            if let simulatedWorkers {
                let ok = try SwarmBenchmark.table(workerCounts: simulatedWorkers.values, jobSeconds: jobSeconds, jobsPerWorker: jobsPerWorker,
                                                  executable: SweepCLI.executable) { print($0) }
                if !ok { throw ExitCode(1) }
                return
            }
            var bench = NoopThroughputBenchmark(executable: SweepCLI.executable)
            (bench.jobs, bench.workers) = (jobs, workers)
            let feed = dashboard.feed()
            bench.observer = feed
            bench.beside = { dir in try dashboard.start(stateDir: dir, feed: feed).map { server in { server.stop() } } }
            try bench.run(outstanding: outstanding.values) { print($0) }
        }
    }
}
