import ArgumentParser
import Basics
import Foundation
import Sweep

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

    func run() throws {
        try SweepCLI.guarded {
            let levels = try ListFlag.ints(outstanding, flag: "--outstanding")
            print("coordinator benchmark: \(jobs) noop jobs, \(workers) local worker processes, loopback TCP,")
            print("SQLite WAL (synchronous=NORMAL) on: one transaction per poll cycle (group commit within 2 ms), results ACKed after commit")
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
                let local = LocalWorkers()
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
