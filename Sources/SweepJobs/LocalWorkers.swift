import Basics
import Foundation
import Sweep

/// Worker processes started by `run` and `bench` on this machine (our own binary, `worker`).
/// Started with the project's own spawn (`SpawnedChild`), not Foundation's `Process`, which can
/// miss a child's exit on Linux (see SpawnedChild).
public final class LocalWorkers: @unchecked Sendable {
    /// The binary workers run (this executable).
    private let executable: String

    public init(executable: String) { self.executable = executable }

    private let lock = NSLock()
    /// Started workers; an entry becomes nil once reaped.
    private var children: [SpawnedChild?] = []

    /// Starts `count` workers connecting to `endpoint`; their logs go to `logDir/worker-K.log` (nil: discarded).
    public func start(count: Int, endpoint: String, extraArgs: [String], logDir: String?) throws {
        if let logDir { try AtomicFile.makeDirectory(logDir) }
        for k in 1 ... count {
            let log = logDir.map { $0 + "/worker-\(k).log" } ?? "/dev/null"
            let child: SpawnedChild
            do {
                child = try SpawnedChild(path: executable, arguments: ["worker", "--connect", endpoint, "--name", "local\(k)"] + extraArgs,
                                         environment: ProcessInfo.processInfo.environment, stderrPath: log, stdoutToStderrFile: true)
            } catch { throw SweepError.io("cannot start local worker: \(error)") }
            lock.lock(); children.append(child); lock.unlock()
        }
    }

    /// `ranksweep run`'s wiring: `count` workers of `threads` BLAS threads each start as soon as the
    /// coordinator of `options` is bound (logs in STATE_DIR/logs, caches in STATE_DIR/worker-cache,
    /// the coordinator's heartbeat settings), and hand back first when it is stopped.
    public func attach(to options: inout CoordinatorOptions, count: Int, threads: Int, timing: Timing) {
        let dir = options.stateDir
        let args = ["--threads", String(threads), "--cache-dir", dir + "/worker-cache",
                    "--heartbeat-ms", String(timing.heartbeatMs), "--liveness", String(timing.liveness)]
        options.onBound = { [self] endpoint in
            do { try start(count: count, endpoint: endpoint, extraArgs: args, logDir: dir + "/logs") } catch { Log.error("\(error)") }
        }
        // Ctrl-C: the workers hand back first (checkpoints included), then the coordinator leaves.
        options.onStop = { [self] in terminateAll() }
    }

    /// SIGTERMs every worker still running (each hands its jobs and checkpoints back, then exits):
    /// how many were told.
    public func terminateAll() -> Int {
        lock.lock(); let running = children.compactMap { $0 }.filter { $0.exitIfEnded() == nil }; lock.unlock()
        for child in running { child.terminate() }
        return running.count
    }

    /// Waits up to `seconds` for the workers to leave by themselves, then SIGTERMs the rest.
    public func stop(within seconds: Double) {
        lock.lock(); var running = children.compactMap { $0 }; children = []; lock.unlock()
        let end = monotonicSeconds() + seconds
        while !running.isEmpty {
            running = running.filter { $0.exitIfEnded() == nil }
            if running.isEmpty || monotonicSeconds() >= end { break }
            usleep(20_000)
        }
        for child in running { child.terminate() }
        for child in running { _ = child.wait() }
    }
}
