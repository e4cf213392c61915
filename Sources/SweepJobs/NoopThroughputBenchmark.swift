import Basics
import Foundation
import Sweep

/// `ranksweep bench coordinator`: no-op jobs through the real coordinator, SQLite state on, with
/// local worker processes; one run per number of jobs outstanding per worker.
public struct NoopThroughputBenchmark {
    public var jobs = 20_000
    public var workers = 2
    public var executable: String
    /// Watches each run's coordinator (the dashboard's feed), when given.
    public var observer: (any SweepObserver)?
    /// Started beside each run's coordinator with its state dir (the dashboard); returns how to stop it.
    public var beside: ((String) throws -> (() -> Void)?)?

    public init(executable: String) { self.executable = executable }

    /// Runs every level in `outstanding` and says one table row per run.
    public func run(outstanding: [Int], say: (String) -> Void) throws {
        say("coordinator benchmark: \(jobs) noop jobs, \(workers) local worker processes, loopback TCP,")
        say("SQLite WAL (synchronous=NORMAL) on: a committer thread groups each commit (2 ms after the last), results ACKed after their commit")
        say("outstanding/worker |   jobs/s | median round trip | seconds")
        for k in outstanding {
            let dir = NSTemporaryDirectory() + "ranksweep-bench-\(getpid())-\(k)"
            try? FileManager.default.removeItem(atPath: dir)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var spec = SweepSpec()
            spec.pipeline = false
            spec.noop = jobs
            var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
            o.sweep = spec
            o.progress = .none
            let local = LocalWorkers(executable: executable)
            let n = workers
            o.onBound = { ep in try? local.start(count: n, endpoint: ep, extraArgs: ["--slots", String(k), "--threads", "1",
                                                                                   "--cache-dir", dir + "/cache"], logDir: nil) }
            o.observer = observer
            let level = Log.level
            Log.level = .warn
            defer { Log.level = level }
            let c = try Coordinator(options: o)
            let stop = try beside?(dir)
            let s = try c.run()
            stop?()
            local.stop(within: 3)
            let rate = Double(s.doneThisRun) / max(1e-9, s.seconds)
            say(String(format: "%18d | %8.0f | %14.0f us | %.2f", k, rate, s.medianRoundTrip * 1e6, s.seconds))
        }
    }
}
