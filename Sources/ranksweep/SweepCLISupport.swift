import ArgumentParser
import Basics
import CSupport
import Foundation
import Sweep
import SweepJobs

/// Shared bits of the sweep commands: one-line errors, our own executable's path, timing flags.
enum SweepCLI {
    /// Runs a command body; any error becomes one line `Error: ...` on stderr (the parser's own
    /// spelling, so every command reports alike) and exit status 1.
    static func guarded<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ExitCode { throw e } catch let e as ValidationError { throw e } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// This binary (exec-job children and local workers run it).
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }
}

/// The live report's throttle, shared by coordinator and run.
struct ReportOptions: ParsableArguments {
    @Option(name: .customLong("report-interval"), help: "Refresh STATE_DIR/report at most every this many seconds while the sweep runs, when new results arrived.")
    var reportInterval: Double = 30

    func validate() throws {
        if !(reportInterval >= 1 && reportInterval <= 86_400) { throw ValidationError("--report-interval must be in 1...86400 seconds") }
    }

    func reporter(stateDir: String) -> LiveReport { LiveReport(stateDir: stateDir, interval: reportInterval, executable: SweepCLI.executable) }
}

/// Heartbeat flags shared by coordinator, worker and run (tests use short ones).
struct TimingOptions: ParsableArguments {
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in ms (default 1000, env RANKSWEEP_HEARTBEAT_MS).")
    var heartbeatMs: Int?

    @Option(help: "Missed heartbeats before a peer is dead (default 5, env RANKSWEEP_LIVENESS).")
    var liveness: Int?

    func validate() throws {
        if let h = heartbeatMs, h < 10 || h > 600_000 { throw ValidationError("--heartbeat-ms must be in 10...600000") }
        if let l = liveness, l < 1 || l > 1000 { throw ValidationError("--liveness must be in 1...1000") }
    }

    var timing: Timing {
        var t = Timing.fromEnvironment()
        if let h = heartbeatMs { t.heartbeatMs = h }
        if let l = liveness { t.liveness = l }
        return t
    }
}

/// Where the executable plugs into the coordinator: the completion line, and the report kept
/// current while the sweep runs (`LiveReport`).
enum SweepHooks {
    /// Prints the outcome; the final report follows from `LiveReport` without blocking the coordinator.
    static func sweepCompleted(_ summary: SweepSummary, _ store: SweepStore) throws {
        print("sweep complete: \(summary.done) done, \(summary.failed) failed of \(summary.total) jobs; results in \(summary.stateDir)/\(SweepStore.fileName)")
    }
}
