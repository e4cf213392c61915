import ArgumentParser
import Basics
import CommandLineOptions
import CSupport
import Foundation
import Sweep
import SweepJobs

/// Shared bits of the commands: one-line errors, our own executable's path, the core count.
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

extension ReportOptions {
    func reporter(stateDir: String) -> LiveReport { LiveReport(stateDir: stateDir, interval: reportInterval, executable: SweepCLI.executable) }
}

/// Where the executable plugs into the coordinator: the completion line, and the report kept
/// current while the sweep runs (`LiveReport`).
enum SweepHooks {
    /// Prints the outcome; the final report follows from `LiveReport` without blocking the coordinator.
    static func sweepCompleted(_ summary: SweepSummary, _ store: SweepStore) throws {
        print("sweep complete: \(summary.done) done, \(summary.failed) failed of \(summary.total) jobs; results in \(summary.stateDir)/\(SweepStore.fileName)")
    }
}

/// What `run` and `coordinator` share: the flags of a coordinator's run and the one way it is
/// served (its dashboard, its live report, the exit status of the sweep).
struct CoordinatorRunOptions: ParsableArguments {
    @Option(help: "Progress display: auto (bar on a terminal, log lines otherwise), plain, none.") var progress: ProgressDisplay.Mode = .auto
    @Option(name: .customLong("job-timeout"), help: "Seconds an attempt may run before it is cancelled and counted as failed (overrides the sweep's job_timeout).")
    var jobTimeout: Double?
    @Flag(name: .customLong("allow-changes"),
          help: "On an existing state dir: run jobs whose settings the sweep file changes as new jobs beside the old ones (otherwise refused).")
    var allowChanges = false
    @OptionGroup var timingOptions: TimingOptions
    @OptionGroup var report: ReportOptions
    @OptionGroup var dashboard: DashboardOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let t = jobTimeout, !(t > 0 && t.isFinite) { throw ValidationError("--job-timeout must be a positive number of seconds") }
    }

    /// Runs the coordinator with these flags until the sweep ends or a signal stops it; `localWorkers`
    /// (run's own) are stopped after it. Exit status: 2 when jobs failed, 128 + signal when stopped.
    func serve(_ options: CoordinatorOptions, localWorkers: LocalWorkers? = nil) throws {
        var o = options
        o.timing = timingOptions.timing
        o.allowChanges = allowChanges
        o.progress = progress
        let feed = dashboard.feed()
        o.observer = feed
        Log.role = "coordinator"
        _ = csupport_install_stop_handlers()
        let c = try Coordinator(options: o, onSweepComplete: SweepHooks.sweepCompleted, reporter: report.reporter(stateDir: o.stateDir))
        let server = try dashboard.start(stateDir: o.stateDir, feed: feed)
        let summary = try c.run()
        server?.stop(after: summary.interrupted ? 0 : 1.5)
        localWorkers?.stop(within: summary.interrupted ? 0.5 : 5)
        if summary.interrupted { try exitIfInterrupted(); throw ExitCode(130) }
        if summary.failed > 0 { throw ExitCode(2) }
    }
}
