import Foundation

/// Everything a worker needs to start.
public struct WorkerOptions: Sendable {
    /// Coordinator endpoint, e.g. `tcp://coordinator:5555`.
    public var connect: String
    /// BLAS threads per job (OPENBLAS_NUM_THREADS of job processes).
    public var threads: Int
    /// Jobs run at once.
    public var slots: Int
    /// Artifact cache and job work directories (kept across jobs and restarts).
    public var cacheDir: String
    /// Own CURVE key pair and the coordinator's public key: both or neither.
    public var keys: CurveKeyPair?
    public var serverKey: String?
    public var timing = Timing.fromEnvironment()
    public var faults = WorkerFaults()
    /// The `ranksweep` binary that runs `exec-job` children (normally this process's own executable).
    public var executable: String
    /// Keep running (reconnecting) after the coordinator says the sweep is complete.
    public var stayAfterSweep = false
    /// Prefix of the worker id (default: host name).
    public var name: String?
    /// Seconds without a word from any coordinator after which the worker gives up and exits
    /// (nil: never): a late worker does not retry forever at a finished sweep's address.
    public var giveUpAfter: Double? = 600

    public init(connect: String, threads: Int, slots: Int, cacheDir: String, executable: String) {
        self.connect = connect; self.threads = threads; self.slots = slots; self.cacheDir = cacheDir; self.executable = executable
    }

    public static var defaultCacheDir: String {
        let env = ProcessInfo.processInfo.environment
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/ranksweep" }
        if let h = env["HOME"], !h.isEmpty { return h + "/.cache/ranksweep" }
        return "/tmp/ranksweep-cache-\(getuid())"
    }
}

/// Failure injection (zguide: prove heartbeating by killing and freezing peers on purpose).
/// Given as `--fault NAME[=VALUE]`, repeatable:
/// - `stall-after-jobs=N`: after N finished jobs the worker freezes forever (no heartbeats, no
///   results): the coordinator must declare it dead and requeue its work.
/// - `crash-mid-job`: the worker process exits abruptly (`_exit(137)`) 0.3 s into its first job.
/// - `freeze-on-job=S`: on its first job the worker's socket loop freezes for S seconds while the
///   job keeps running: it comes back with a late result for an attempt declared dead.
/// - `duplicate-done`: every DONE is sent twice (the coordinator must drop the second).
public struct WorkerFaults: Sendable, Equatable {
    public var stallAfterJobs: Int?
    public var crashMidJob = false
    public var freezeOnJob: Double?
    public var duplicateDone = false
    public init() {}

    public mutating func add(_ spec: String) throws {
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        let name = parts[0], value = parts.count > 1 ? parts[1] : nil
        switch name {
        case "stall-after-jobs":
            guard let v = value.flatMap(Int.init), v >= 0 else { throw SweepError.invalid("--fault stall-after-jobs=N needs a count") }
            stallAfterJobs = v
        case "crash-mid-job": crashMidJob = true
        case "freeze-on-job":
            guard let v = value.flatMap(Double.init), v > 0 else { throw SweepError.invalid("--fault freeze-on-job=S needs seconds") }
            freezeOnJob = v
        case "duplicate-done": duplicateDone = true
        default:
            throw SweepError.invalid("--fault \(spec): unknown fault (stall-after-jobs=N, crash-mid-job, freeze-on-job=S, duplicate-done)")
        }
    }
}
