import Basics
import Foundation

/// Everything the coordinator needs to start.
public struct CoordinatorOptions: Sendable {
    /// ZeroMQ endpoint to bind, e.g. `tcp://0.0.0.0:5555` (or `tcp://127.0.0.1:*` for any free port).
    public var bind: String
    /// Holds sweep.sqlite and artifacts/; reusing it resumes the sweep.
    public var stateDir: String
    /// The sweep to create; nil resumes the one in the state dir. Given on resume, it must match.
    public var sweep: SweepSpec?
    /// A sweep file that changes settings of jobs the state dir has: run those as new jobs beside
    /// the old ones (otherwise the coordinator refuses, naming what changed).
    public var allowChanges = false
    /// Name of the sweep file, for messages.
    public var sweepSource = "sweep"
    /// Server key pair: CURVE on. Nil: plain TCP (only on loopback unless `insecure`).
    public var serverKeys: CurveKeyPair?
    /// Worker public keys (Z85) admitted by the ZAP handler when CURVE is on.
    public var allowlist: Set<String> = []
    /// Allow plain TCP on a non-loopback address.
    public var insecure = false
    public var timing = Timing.fromEnvironment()
    /// Live progress: bar + per-worker lines on a terminal, log lines otherwise, or nothing.
    public var progress = ProgressDisplay.Mode.auto
    /// Time a resumed coordinator waits for workers to reattach their running jobs before it
    /// dispatches those jobs again (nil: the liveness limit).
    public var reattachGrace: Double?
    /// Per-job timeout in seconds for this run (`--job-timeout`); overrides the sweep's `job_timeout`.
    /// An attempt running longer is cancelled on its worker and counts as a failure.
    public var jobTimeout: Double?
    /// Called once, on the first stop signal, while workers are attached: stops this machine's own
    /// workers (`run` SIGTERMs them) and returns how many it told to stop. The coordinator then keeps
    /// serving, up to `stopGrace` seconds, until they have handed back their jobs and checkpoints.
    /// Nil (or 0): exit at once; remote workers reattach to the next coordinator by themselves.
    public var onStop: (@Sendable () -> Int)?
    /// Longest wait for stopping workers: above a worker's own checkpoint-upload limit (20 s).
    public var stopGrace = 30.0
    /// Called with the endpoint actually bound (the port when binding `:*`) once serving.
    public var onBound: (@Sendable (String) -> Void)?
    /// Told every committed change and, twice a second, the status (the live dashboard).
    public var observer: (any SweepObserver)?

    public init(bind: String, stateDir: String) {
        self.bind = bind
        self.stateDir = stateDir
    }
}

/// What the sweep ended with; given to the completion hook and returned by `Coordinator.run`.
public struct SweepSummary: Sendable {
    public var stateDir: String
    public var total: Int
    public var done: Int
    public var failed: Int
    /// Jobs whose results were accepted by this coordinator process (not by an earlier one).
    public var doneThisRun: Int
    /// Seconds from the first dispatch of this run to the last result.
    public var seconds: Double
    /// Dispatch -> DONE received, per job finished in this run (seconds, sorted).
    public var roundTrips: [Double]
    /// True when stopped by a signal before the sweep completed.
    public var interrupted: Bool

    public var complete: Bool { done + failed == total }
    public var medianRoundTrip: Double { roundTrips.isEmpty ? 0 : roundTrips[roundTrips.count / 2] }
}

/// The completion hook: called once, on the coordinator thread, when every job is done or failed
/// and the state is committed. The report generator plugs in here (reads results from the store).
public typealias SweepCompletionHook = (SweepSummary, SweepStore) throws -> Void

/// Keeps a sweep's report current while it runs (the executable's `LiveReport`). Called on the
/// coordinator thread once per poll cycle, after the cycle's commit, so it must return at once:
/// start work in a child process, never wait for it.
public protocol SweepReporter: AnyObject {
    /// `finished`: done + failed jobs so far; `complete`: every job is terminal (and committed).
    /// Returns true while the final report is still being written: the coordinator keeps serving
    /// (heartbeats, STATUS, late HELLOs) until it is.
    func cycle(now: Double, finished: Int, complete: Bool) -> Bool
}

/// Loopback endpoints need no encryption; anything else needs CURVE or `--insecure`.
public enum Endpoint {
    public static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        let hostPort = endpoint.dropFirst(6)
        let host: Substring
        if hostPort.hasPrefix("[") { host = hostPort.dropFirst().prefix(while: { $0 != "]" }) } else {
            host = hostPort.prefix(while: { $0 != ":" })
        }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "lo"
    }
}
