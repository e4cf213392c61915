import ArgumentParser
import Basics
import Foundation
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
    @Option(help: "Jobs outstanding per worker, one run each (e.g. \"1,8\").") var outstanding = "1,8"
    @OptionGroup var dashboard: DashboardOptions
    @Option(name: .customLong("simulated-workers"),
            help: "Instead: this many simulated workers (one process, one poll loop, real sockets) against a coordinator process; comma-separated for several runs.")
    var simulatedWorkers: String?
    @Option(name: .customLong("job-seconds"), help: "With --simulated-workers: seconds each simulated job takes.") var jobSeconds = 0.5
    @Option(name: .customLong("jobs-per-worker"), help: "With --simulated-workers: jobs per simulated worker.") var jobsPerWorker = 20

    func run() throws {
        if let simulatedWorkers { return try runSwarm(simulatedWorkers) }
        try SweepCLI.guarded {
            let levels = try ListFlag.ints(outstanding, flag: "--outstanding")
            print("coordinator benchmark: \(jobs) noop jobs, \(workers) local worker processes, loopback TCP,")
            print("SQLite WAL (synchronous=NORMAL) on: a committer thread groups each commit (2 ms after the last), results ACKed after their commit")
            print("outstanding/worker |   jobs/s | median round trip | seconds")
            for k in levels {
                let dir = NSTemporaryDirectory() + "ranksweep-bench-\(getpid())-\(k)"
                try? FileManager.default.removeItem(atPath: dir)
                defer { try? FileManager.default.removeItem(atPath: dir) }
                var spec = SweepSpec()
                spec.pipeline = false
                spec.noop = jobs
                var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
                o.sweep = spec
                o.progress = .none
                let local = LocalWorkers(executable: SweepCLI.executable)
                let n = workers
                o.onBound = { ep in try? local.start(count: n, endpoint: ep, extraArgs: ["--slots", String(k), "--threads", "1",
                                                                                       "--cache-dir", dir + "/cache"], logDir: nil) }
                Log.level = .warn
                let feed = dashboard.feed()
                o.observer = feed
                let c = try Coordinator(options: o)
                let server = try dashboard.start(stateDir: dir, feed: feed)
                let s = try c.run()
                server?.stop()
                local.stop(within: 3)
                Log.level = .info
                let rate = Double(s.doneThisRun) / max(1e-9, s.seconds)
                print(String(format: "%18d | %8.0f | %14.0f us | %.2f", k, rate, s.medianRoundTrip * 1e6, s.seconds))
            }
        }
    }
}

extension BenchCoordinatorCommand {
    /// `--simulated-workers`: one `SwarmBenchmark` run per count, a table of figures.
    func runSwarm(_ counts: String) throws {
        try SweepCLI.guarded {
            let levels = try ListFlag.ints(counts, flag: "--simulated-workers")
            print("swarm benchmark: a coordinator process (SQLite on) and simulated workers in this process over loopback TCP,")
            print("1 slot each, \(jobsPerWorker) jobs of \(jobSeconds) s per worker; CPU: \(SwarmBenchmark.cpuModel())")
            print(" workers |  jobs | eff. incl. ramp-up | eff. after | ramp-up s | jobs/s | welcome p50/p99/max ms | >1 s | DONE->JOB p50/p99 ms | coord CPU s | coord RSS MiB | exactly once")
            for n in levels {
                let dir = NSTemporaryDirectory() + "ranksweep-swarm-\(getpid())-\(n)"
                try? FileManager.default.removeItem(atPath: dir)
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let settings = SwarmBenchmark.Settings(workers: n, jobSeconds: jobSeconds, jobsPerWorker: jobsPerWorker,
                                                       executable: SweepCLI.executable, directory: dir)
                let r = try SwarmBenchmark.run(settings) { Log.info($0) }
                print(SwarmBenchmark.row(r))
                if r.simulatorBound {
                    print(String(format: "  note: the simulator was the bottleneck here (its CPU %.1f s over a %.1f s span; DONEs late by %.1f ms at p99): the coordinator may do better",
                                 r.simulatorCPUSeconds, r.spanSeconds, r.simulatorLateP99 * 1000))
                }
                if !r.exactlyOnce {
                    print("  error: not every job was done exactly once: \(r.storeDone) done, \(r.storeSingleAttempt) with one attempt, \(r.storeAttempts) attempts, \(r.duplicateJobs) repeated JOBs")
                    throw ExitCode(1)
                }
            }
        }
    }
}
