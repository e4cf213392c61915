import Foundation

/// A committed state change, as the coordinator publishes it to an observer (the dashboard). Built
/// from the cycle's store ops after they are durable, so an observer never shows what could be lost.
public enum SweepEvent: Sendable, Equatable {
    /// A job changed state (`attempt`: the attempt it concerns; `worker`: who runs it or ran it).
    case jobState(job: String, state: JobState, attempt: Int?, worker: String?, reason: String?)
    /// A PROGRESS header, as the worker sent it (`ProgressHeader` JSON), parsed by the observer.
    case progress(job: String, header: String)
    /// An accepted result: the result JSON object and output file name -> artifact hash (JSON).
    case result(job: String, attempt: Int, worker: String, result: String, artifacts: String, seconds: Double)
    /// An artifact stored (input, output or checkpoint).
    case artifact(hash: String, bytes: Int64)
}

/// Receives the coordinator's committed changes and, twice a second, its status snapshot. Called
/// on the coordinator thread, so an implementation must return at once (queue and leave) and never
/// block on anything an HTTP client controls.
public protocol SweepObserver: AnyObject, Sendable {
    func publish(_ events: [SweepEvent])
    func publish(status: SweepStatus, at time: Double)
}

extension SweepEvent {
    /// The events of one cycle's ops (those an observer cares about; the rest are bookkeeping).
    static func of(_ ops: [SweepStore.Op]) -> [SweepEvent] {
        var events: [SweepEvent] = []
        for op in ops {
            switch op {
            case .dispatch(let ref, let worker), .reattach(let ref, let worker):
                events.append(.jobState(job: ref.job, state: .running, attempt: ref.attempt, worker: worker, reason: nil))
            case .done(let ref, let worker, let result, let artifacts, let seconds):
                events.append(.result(job: ref.job, attempt: ref.attempt, worker: worker, result: result, artifacts: artifacts, seconds: seconds))
                events.append(.jobState(job: ref.job, state: .done, attempt: ref.attempt, worker: worker, reason: nil))
            case .requeue(let job, _):
                events.append(.jobState(job: job, state: .queued, attempt: nil, worker: nil, reason: nil))
            case .failJob(let job, _, let reason):
                events.append(.jobState(job: job, state: .failed, attempt: nil, worker: nil, reason: reason))
            case .progress(let job, let text):
                events.append(.progress(job: job, header: text))
            case .artifact(let hash, let size, _):
                events.append(.artifact(hash: hash, bytes: size))
            default: break
            }
        }
        return events
    }
}
