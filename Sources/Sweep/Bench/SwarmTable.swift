import Basics
import Foundation

extension SwarmBenchmark {
    /// One run per worker count, a table of figures through `say`; false when some run did not do
    /// every job exactly once (that row says why).
    public static func table(workerCounts: [Int], jobSeconds: Double, jobsPerWorker: Int, executable: String,
                             say: (String) -> Void) throws -> Bool {
        say("swarm benchmark: a coordinator process (SQLite on) and simulated workers in this process over loopback TCP,")
        say("1 slot each, \(jobsPerWorker) jobs of \(jobSeconds) s per worker; CPU: \(CPUInfo.modelName)")
        say(" workers |  jobs | eff. incl. ramp-up | eff. after | ramp-up s | jobs/s | welcome p50/p99/max ms | >1 s | DONE->JOB p50/p99 ms | coord CPU s | coord RSS MiB | exactly once")
        for n in workerCounts {
            let dir = NSTemporaryDirectory() + "ranksweep-swarm-\(getpid())-\(n)"
            try? FileManager.default.removeItem(atPath: dir)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let settings = Settings(workers: n, jobSeconds: jobSeconds, jobsPerWorker: jobsPerWorker, executable: executable, directory: dir)
            let r = try run(settings) { Log.info($0) }
            say(row(r))
            if r.simulatorBound {
                say(String(format: "  note: the simulator was the bottleneck here (its CPU %.1f s over a %.1f s span; DONEs late by %.1f ms at p99): the coordinator may do better",
                           r.simulatorCPUSeconds, r.spanSeconds, r.simulatorLateP99 * 1000))
            }
            if !r.exactlyOnce {
                say("  error: not every job was done exactly once: \(r.storeDone) done, \(r.storeSingleAttempt) with one attempt, \(r.storeAttempts) attempts, \(r.duplicateJobs) repeated JOBs")
                return false
            }
        }
        return true
    }
}
