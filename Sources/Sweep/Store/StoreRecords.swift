import Foundation
import GRDB

/// A job's state (`jobs.state`): the one list the store, the coordinator, `status` and reports share.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case queued, running, done, failed
}

/// How an attempt ended (`attempts.outcome`; NULL while it runs). Whether one counts towards
/// `max_attempts` is decided where the coordinator records it (`failed` and `dead` do).
public enum AttemptOutcome: String, Sendable, Codable, CaseIterable {
    /// The result was accepted.
    case done
    /// The job failed on the worker, or its result was unusable.
    case failed
    /// The worker stopped answering while it ran.
    case dead
    /// The worker gave it back (it left, or turned the job down) — not the job's fault.
    case handback
    /// The coordinator restarted while it ran; its result is still welcome from that worker.
    case orphaned
    /// Cancelled by the coordinator: another attempt of the job finished first.
    case cancelled
    /// The worker reconnected without it.
    case lost
}

/// A worker's state (`workers.state`), as the coordinator records it.
public enum WorkerState: String, Sendable, Codable, CaseIterable {
    /// Connected (said HELLO).
    case alive
    /// Said BYE.
    case left
    /// Silent past the liveness limit.
    case dead
    /// Told BYE when the sweep completed.
    case finished
    /// Still attached when its coordinator stopped.
    case detached
}

/// The kind of an `events` row the coordinator writes.
public enum SweepEventKind: String, Sendable, CaseIterable {
    /// A message dropped before it was understood (oversized, malformed).
    case dropped
    /// A message refused: it speaks for something its sender does not hold.
    case refused
    /// A worker said (HELLO) it holds an attempt that is not open on it.
    case staleAttempt = "stale-attempt"
    /// A late or duplicate DONE.
    case duplicateDone = "duplicate-done"
    /// An attempt ran past the per-job timeout.
    case timeout
    case workerDead = "worker-dead"
    /// A sweep file added jobs to the state dir's sweep.
    case sweepExtended = "sweep-extended"
    /// A targeted search added a probe job.
    case searchProbe = "search-probe"
}

/// One row of `jobs`, as the store's readers see it.
public struct JobRow: Sendable, Equatable {
    public var id: String
    public var kind: String
    /// The job spec JSON (`TrainJobSpec`, `CompressJobSpec`, or a test kind's spec).
    public var spec: String
    public var deps: [String]
    public var inputs: [PlannedInput]
    public var state: JobState
    /// Last attempt number issued (0: never dispatched).
    public var attempt: Int
    /// Attempts that count towards `maxAttempts`.
    public var failures: Int
    public var maxAttempts: Int
    /// The worker running it, or the one whose result was accepted.
    public var worker: String?
    /// The latest PROGRESS JSON of a running attempt.
    public var progress: String?
    /// Why a failed job failed.
    public var reason: String?
}

/// One row of `attempts`.
public struct AttemptRow: Sendable, Equatable {
    public var job: String
    public var attempt: Int
    public var worker: String
    public var started: Double
    public var ended: Double?
    /// nil while the attempt runs.
    public var outcome: AttemptOutcome?
    public var reason: String?
}

/// One row of `results`: the accepted result of a finished job.
public struct JobResultRow: Sendable, Equatable {
    public var job: String
    public var attempt: Int
    public var worker: String
    /// The job's result JSON object.
    public var result: String
    /// Output file name -> SHA-256 of the artifact.
    public var artifacts: [String: String]
    /// Wall time of the attempt on its worker.
    public var seconds: Double
    public var finished: Double
}

/// One row of `events` (aggregated events carry their count).
public struct EventRow: Sendable, Equatable {
    public var time: Double
    public var kind: String
    public var job: String?
    public var attempt: Int?
    public var worker: String?
    public var detail: String?
    public var count: Int
}

/// One row of `workers`.
public struct WorkerRow: Sendable, Equatable {
    public var id: String
    public var host: String
    public var cores: Int
    public var slots: Int
    public var threads: Int
    /// A `WorkerState`'s raw value.
    public var state: String
    public var firstSeen: Double
    public var lastSeen: Double
}

/// The typed read API: every reader outside `Store/` (status, reports, tests) goes through these.
extension SweepStore {
    /// Every job, in plan order.
    public func jobs() throws -> [JobRow] {
        let dec = JSONDecoder()
        return try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, kind, spec, deps, inputs, state, attempt, failures, max_attempts, worker, progress, reason FROM jobs ORDER BY seq
                """).map { r in
                let id: String = r["id"]
                guard let deps = try? dec.decode([String].self, from: Data((r["deps"] as String).utf8)),
                      let inputs = try? dec.decode([PlannedInput].self, from: Data((r["inputs"] as String).utf8)) else {
                    throw SweepError.invalid("\(self.path): table jobs, job \"\(id)\": deps or inputs is not the JSON this build wrote; use a new --state-dir")
                }
                let stateText: String = r["state"]
                guard let state = JobState(rawValue: stateText) else {
                    throw SweepError.invalid("\(self.path): table jobs, job \"\(id)\": state \(stateText.prefix(40)) is not one of "
                                             + JobState.allCases.map(\.rawValue).joined(separator: ", "))
                }
                return JobRow(id: id, kind: r["kind"], spec: r["spec"], deps: deps, inputs: inputs, state: state,
                              attempt: r["attempt"], failures: r["failures"], maxAttempts: r["max_attempts"],
                              worker: r["worker"], progress: r["progress"], reason: r["reason"])
            }
        }
    }

    /// Every attempt (or one job's), by job and attempt number.
    public func attempts(job: String? = nil) throws -> [AttemptRow] {
        try db.read { db in
            let sql = "SELECT job, attempt, worker, started, ended, outcome, reason FROM attempts" + (job == nil ? "" : " WHERE job = ?")
                + " ORDER BY job, attempt"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(job.map { [$0] } ?? [])).map { r in
                let outcomeText: String? = r["outcome"]
                let outcome = try outcomeText.map { text in
                    guard let o = AttemptOutcome(rawValue: text) else {
                        throw SweepError.invalid("\(self.path): table attempts, job \"\(r["job"] as String)\": outcome \(text.prefix(40)) is not one of "
                                                 + AttemptOutcome.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    return o
                }
                return AttemptRow(job: r["job"], attempt: r["attempt"], worker: r["worker"], started: r["started"], ended: r["ended"],
                                  outcome: outcome, reason: r["reason"])
            }
        }
    }

    /// The accepted results of finished jobs.
    public func results() throws -> [JobResultRow] {
        let dec = JSONDecoder()
        return try db.read { db in
            try Row.fetchAll(db, sql: "SELECT job, attempt, worker, result, artifacts, seconds, finished FROM results ORDER BY finished, job").map { r in
                let job: String = r["job"]
                guard let artifacts = try? dec.decode([String: String].self, from: Data((r["artifacts"] as String).utf8)) else {
                    throw SweepError.invalid("\(self.path): table results, job \"\(job)\": artifacts is not the JSON this build wrote")
                }
                return JobResultRow(job: job, attempt: r["attempt"], worker: r["worker"], result: r["result"], artifacts: artifacts,
                                 seconds: r["seconds"], finished: r["finished"])
            }
        }
    }

    /// Events in the order they were written, optionally of one kind only.
    public func events(kind: String? = nil) throws -> [EventRow] {
        try db.read { db in
            let sql = "SELECT time, kind, job, attempt, worker, detail, count FROM events" + (kind == nil ? "" : " WHERE kind = ?") + " ORDER BY id"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(kind.map { [$0] } ?? [])).map { r in
                EventRow(time: r["time"], kind: r["kind"], job: r["job"], attempt: r["attempt"], worker: r["worker"], detail: r["detail"], count: r["count"])
            }
        }
    }

    /// Every worker that ever said HELLO, by id.
    public func workers() throws -> [WorkerRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT id, host, cores, slots, threads, state, first_seen, last_seen FROM workers ORDER BY id").map { r in
                WorkerRow(id: r["id"], host: r["host"], cores: r["cores"], slots: r["slots"], threads: r["threads"], state: r["state"],
                          firstSeen: r["first_seen"], lastSeen: r["last_seen"])
            }
        }
    }
}
