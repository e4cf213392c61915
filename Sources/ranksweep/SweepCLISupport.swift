import ArgumentParser
import Basics
import CSupport
import Foundation
import Sweep

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

/// Where the lead plugs the report in: called when a sweep completes (coordinator and run).
enum SweepHooks {
    /// Prints the outcome and writes the report (`STATE_DIR/report`). The report runs as a child
    /// process (`ranksweep report`): the coordinator never runs the engine (the overlays need
    /// predictions), and a report that fails, or crashes, is logged without touching the sweep.
    static func sweepCompleted(_ summary: SweepSummary, _ store: SweepStore) throws {
        let line = "sweep complete: \(summary.done) done, \(summary.failed) failed of \(summary.total) jobs; results in \(summary.stateDir)/\(SweepStore.fileName)"
        print(line)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: SweepCLI.executable)
        p.arguments = ["report", "--state-dir", summary.stateDir]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do {
            try p.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
            if p.terminationReason == .exit && p.terminationStatus == 0 {
                if !text.isEmpty { print(text) }
            } else {
                Log.error("report failed (\(p.terminationReason == .exit ? "exit \(p.terminationStatus)" : "signal \(p.terminationStatus)")): \(text)")
            }
        } catch {
            Log.error("cannot start the report (\(SweepCLI.executable) report): \(error)")
        }
    }
}

/// Worker processes started by `run` and `bench` on this machine (our own binary, `worker`).
final class LocalWorkers: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []

    /// Starts `count` workers connecting to `endpoint`; their logs go to `logDir/worker-K.log` (nil: discarded).
    func start(count: Int, endpoint: String, extraArgs: [String], logDir: String?) throws {
        for k in 1 ... count {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: SweepCLI.executable)
            p.arguments = ["worker", "--connect", endpoint, "--name", "local\(k)"] + extraArgs
            if let logDir {
                try AtomicFile.makeDirectory(logDir)
                let path = logDir + "/worker-\(k).log"
                FileManager.default.createFile(atPath: path, contents: nil)
                p.standardError = FileHandle(forWritingAtPath: path)
                p.standardOutput = FileHandle(forWritingAtPath: path)
            } else {
                p.standardError = FileHandle.nullDevice
                p.standardOutput = FileHandle.nullDevice
            }
            do { try p.run() } catch { throw SweepError.io("cannot start local worker: \(error)") }
            lock.lock(); processes.append(p); lock.unlock()
        }
    }

    /// Waits up to `seconds` for the workers to leave by themselves, then SIGTERMs the rest.
    func stop(within seconds: Double) {
        lock.lock(); let ps = processes; lock.unlock()
        let end = Date().addingTimeInterval(seconds)
        while ps.contains(where: { $0.isRunning }) && Date() < end { usleep(20_000) }
        for p in ps where p.isRunning { p.terminate() }
        for p in ps { p.waitUntilExit() }
    }
}
