import Basics
import Foundation
import Sweep

/// Keeps `STATE_DIR/report` current while a sweep runs, without blocking the coordinator: each
/// report is a `ranksweep report` child process (the coordinator never loads the engine, and a
/// report that fails cannot hurt the sweep); the coordinator only starts it and checks, once a
/// cycle, whether it has ended. Interim reports are throttled to one per `interval` seconds and
/// only when results arrived since the last one; the final report runs as soon as every job is
/// terminal, and the coordinator keeps serving until it is written.
public final class LiveReport: SweepReporter {
    public let stateDir: String
    public let interval: Double
    /// The binary that writes the report (`EXECUTABLE report --state-dir DIR`): this executable.
    private let executable: String
    private var child: SpawnedChild?
    private var childIsFinal = false
    private var lastStart = -Double.infinity
    /// Finished jobs (done + failed) the newest report covers.
    private var reportedFinished = 0
    private var finalState: FinalState = .notStarted
    private enum FinalState { case notStarted, running, written }

    public init(stateDir: String, interval: Double, executable: String) {
        self.stateDir = stateDir
        self.interval = interval
        self.executable = executable
    }

    public var outputPath: String { stateDir + "/report.log" }

    public func cycle(now: Double, finished: Int, complete: Bool) -> Bool {
        if let running = child {
            guard let end = running.exitIfEnded() else { return complete }
            child = nil
            reportEnded(end, final: childIsFinal)
            if childIsFinal { finalState = .written }
        }
        if complete {
            switch finalState {
            case .notStarted:
                start(final: true, now: now, finished: finished)
                return finalState == .running
            case .running: return child != nil
            case .written: return false
            }
        }
        if LiveReport.due(now: now, lastStart: lastStart, interval: interval, finished: finished, reportedFinished: reportedFinished) {
            start(final: false, now: now, finished: finished)
        }
        return false
    }

    /// The throttle: new results since the last report, and `interval` seconds since it started.
    static func due(now: Double, lastStart: Double, interval: Double, finished: Int, reportedFinished: Int) -> Bool {
        finished > reportedFinished && now - lastStart >= interval
    }

    private func start(final: Bool, now: Double, finished: Int) {
        lastStart = now
        reportedFinished = finished
        do {
            child = try SpawnedChild(path: executable, arguments: ["report", "--state-dir", stateDir],
                                     environment: ProcessInfo.processInfo.environment, stderrPath: outputPath, stdoutToStderrFile: true)
            childIsFinal = final
            if final { finalState = .running }
        } catch {
            Log.error("cannot start the report (\(executable) report): \(error)")
            if final { finalState = .written }
        }
    }

    private func reportEnded(_ end: (code: Int32, signal: Int32?), final: Bool) {
        let output = FileManager.default.contents(atPath: outputPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard end.signal == nil && end.code == 0 else {
            Log.error("report failed (\(end.signal.map { "signal \($0)" } ?? "exit \(end.code)")): \(text)")
            return
        }
        if final {
            if !text.isEmpty { print(text) }
        } else {
            Log.info("report refreshed in \(stateDir)/report (\(reportedFinished) finished jobs)")
        }
    }
}
