import CSupport
import Foundation

/// Live progress of a sweep. On a terminal: a bar with ETA and one line per worker (current job,
/// epoch), redrawn in place a few times a second. Otherwise: a summary log line every few seconds
/// plus a line per job event for real jobs (noop/sleep events only in small sweeps).
public final class ProgressView {
    let terminal: Bool
    let enabled: Bool
    var lastDraw: Double = 0
    var drawnLines = 0
    var start: Double?

    init(mode: ProgressMode) {
        enabled = mode != .none
        terminal = mode == .auto && csupport_isatty(2) == 1
    }

    func jobEvent(_ text: @autoclosure () -> String, kind: String, coordinator c: Coordinator, important: Bool = false) {
        guard enabled, !terminal || important else { return }
        if important || (kind != "noop" && kind != "sleep") || c.jobs.count <= 100 { Log.info(text()) }
    }

    func update(now: Double, coordinator c: Coordinator) {
        guard enabled else { return }
        if start == nil, c.firstDispatch != nil { start = now }
        let interval = terminal ? 0.25 : 5.0
        guard now - lastDraw >= interval else { return }
        lastDraw = now
        if terminal { draw(c, now: now) } else { Log.info(summaryLine(c, now: now)) }
    }

    func finish(coordinator c: Coordinator) {
        guard enabled else { return }
        if terminal { draw(c, now: Clock.now()); drawnLines = 0 }
    }

    func summaryLine(_ c: Coordinator, now: Double) -> String {
        let running = c.jobs.reduce(0) { $0 + ($1.state == .running ? 1 : 0) }
        return "progress: \(c.doneCount)/\(c.jobs.count) done, \(running) running, \(c.failedCount) failed, \(c.workers.count) worker(s)\(eta(c, now: now))"
    }

    func eta(_ c: Coordinator, now: Double) -> String {
        guard let s = start, c.doneThisRun > 0 else { return "" }
        let rate = Double(c.doneThisRun) / max(1e-6, now - s)
        let left = Double(c.jobs.count - c.terminalCount) / rate
        return ", ETA \(ProgressView.duration(left))"
    }

    /// "42s", "3m07s", "1h05m": durations and ETAs in every progress display.
    public static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }

    func draw(_ c: Coordinator, now: Double) {
        var lines: [String] = []
        let total = max(1, c.jobs.count)
        let width = 30
        let filled = width * c.terminalCount / total
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        lines.append("[\(bar)] \(c.terminalCount)/\(c.jobs.count) (\(c.failedCount) failed)\(eta(c, now: now))")
        for w in c.workers.values.sorted(by: { $0.id < $1.id }).prefix(20) {
            let jobs = w.running.map { r in "\(r.job)#\(r.attempt)" + (w.progress[r.job].map { " \($0)" } ?? "") }.sorted()
            lines.append("  \(w.id): " + (jobs.isEmpty ? "idle" : jobs.joined(separator: ", ")))
        }
        var out = ""
        if drawnLines > 0 { out += "\u{1b}[\(drawnLines)A" }
        for l in lines { out += "\u{1b}[2K" + l + "\n" }
        drawnLines = lines.count
        out.utf8CString.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count - 1) }
    }
}
