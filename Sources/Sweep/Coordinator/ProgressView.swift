import Basics
import Foundation

/// Live progress of a sweep through the one progress renderer (`ProgressDisplay`). On a terminal: a
/// bar with ETA and one line per worker (current job, epoch), redrawn in place. Otherwise: a dated
/// summary line every few seconds plus a line per job event for real jobs (noop/sleep events only
/// in small sweeps).
///
/// ETA: the work left divided over the workers' slots, with each job's length estimated from what
/// is known now — a running job from its epochs to go times its seconds per epoch (PROGRESS
/// carries both), a queued job from finished jobs of its kind, or else from the seconds per
/// epoch its baseline trained at times its own epochs. So the ETA appears after the first epoch of
/// the first job, not after the first (long) job finishes.
public final class ProgressView {
    let display: ProgressDisplay
    let enabled: Bool
    /// Total seconds and count of the finished jobs of each kind (this run).
    var finishedSeconds: [String: (total: Double, count: Int)] = [:]
    /// Epochs in each job's spec, parsed once per job.
    var specEpochs: [Int: Int?] = [:]
    /// Latest seconds per epoch seen for each kind.
    var secondsPerEpoch: [String: Double] = [:]

    init(mode: ProgressDisplay.Mode) {
        enabled = mode != .none
        display = ProgressDisplay(mode: mode)
    }

    var terminal: Bool { display.isTerminal }

    /// A job event in a sweep of `total` jobs (noop/sleep events only in small sweeps).
    func jobEvent(_ text: @autoclosure () -> String, kind: String, total: Int, important: Bool = false) {
        guard enabled, !terminal || important else { return }
        if important || (kind != "noop" && kind != "sleep") || total <= 100 { Log.info(text()) }
    }

    /// A job finished in `seconds` (feeds the ETA).
    func jobFinished(kind: String, seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        let f = finishedSeconds[kind] ?? (0, 0)
        finishedSeconds[kind] = (f.total + seconds, f.count + 1)
    }

    /// An epoch of a running job took `seconds` (feeds the ETA).
    func epochTook(kind: String, seconds: Double) {
        guard seconds.isFinite, seconds > 0 else { return }
        secondsPerEpoch[kind] = seconds
    }

    func update(now: Double, jobs: JobTable, workers: WorkerTable) {
        guard enabled else { return }
        let running = jobs.count(.running)
        let eta = estimate(jobs: jobs, workers: workers)
        if terminal {
            var lines: [String] = []
            for w in workers.sortedByID.prefix(20) {
                let jobs = w.running.map { r in "\(r.job)#\(r.attempt)" + (w.progress[r.job].map { " \($0)" } ?? "") }.sorted()
                lines.append("  \(w.id): " + (jobs.isEmpty ? "idle" : jobs.joined(separator: ", ")))
            }
            display.update("sweep", done: jobs.terminalCount, total: jobs.count, eta: eta,
                           detail: "\(running) running, \(jobs.failedCount) failed", lines: lines)
        } else {
            display.update("progress:", done: jobs.terminalCount, total: jobs.count, eta: eta,
                           detail: "done or failed; \(running) running, \(jobs.failedCount) failed, \(workers.count) worker(s)")
        }
    }

    func finish(jobs: JobTable, workers: WorkerTable) {
        guard enabled else { return }
        // Plain mode already logged the final count when the last job ended.
        if terminal { update(now: monotonicSeconds(), jobs: jobs, workers: workers) }
        display.finish()
    }

    /// Seconds left for the whole sweep, or nil while some remaining job's length is unknown.
    func estimate(jobs: JobTable, workers: WorkerTable) -> Double? {
        var runningLeft: [Double] = []
        var queuedWork = 0.0
        for w in workers.all {
            for r in w.running {
                guard let j = jobs[r.job] else { continue }
                let kind = j.planned.kind
                if let e = w.epochs[r], let epoch = e.epoch, let epochs = e.epochs, let spe = secondsPerEpoch[kind] {
                    runningLeft.append(Double(max(0, epochs - epoch)) * spe)
                } else if let d = typicalSeconds(j) {
                    runningLeft.append(d / 2)
                } else { return nil }
            }
        }
        for j in jobs.all where j.state == .queued {
            guard let d = typicalSeconds(j) else { return nil }
            queuedWork += d
        }
        if runningLeft.isEmpty && queuedWork == 0 { return jobs.allTerminal ? 0 : nil }
        let slots = Double(max(1, workers.all.reduce(0) { $0 + $1.slots }))
        let longest = runningLeft.max() ?? 0
        return max(longest + queuedWork / slots, (runningLeft.reduce(0, +) + queuedWork) / slots)
    }

    /// How long a job of this kind is expected to take.
    func typicalSeconds(_ job: JobRecord) -> Double? {
        let kind = job.planned.kind
        if let done = finishedSeconds[kind], done.count > 0 { return done.total / Double(done.count) }
        // Training-like jobs: their epochs at the seconds per epoch seen so far (a compress job
        // fine-tunes the baseline's model, so the baseline's epoch time is a fair first guess).
        guard let spe = secondsPerEpoch[kind] ?? secondsPerEpoch["train"] else {
            return kind == "noop" ? 0 : nil
        }
        if specEpochs[job.index] == nil { specEpochs[job.index] = .some(Self.epochs(inSpec: job.planned.spec)) }
        return Double((specEpochs[job.index] ?? nil) ?? 1) * spe + spe
    }

    /// `training.epochs` or `fineTune.epochs` of a job spec's JSON.
    static func epochs(inSpec spec: String) -> Int? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(spec.utf8)) as? [String: Any] else { return nil }
        for key in ["training", "fineTune"] {
            if let m = o[key] as? [String: Any], let e = m["epochs"] as? Int { return e }
        }
        return nil
    }
}
