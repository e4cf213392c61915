import Basics
import Foundation
import GRDB

/// The newest checkpoint of a train or fine-tune job (`checkpoints`, one row per job): the attempt
/// that uploaded it, the epochs it completed, and its artifact. A new attempt of the job gets it as
/// its input `checkpoint` and resumes from it; the row survives a coordinator restart.
public struct CheckpointRow: Sendable, Equatable {
    public var job: String
    public var attempt: Int
    public var epoch: Int
    public var hash: String
    public var size: Int64
    public var worker: String
    public var recorded: Double
}

/// Checkpoint writes, applied with the rest of a poll cycle's ops (`SweepStore.Op.checkpoint`).
public enum CheckpointOp {
    /// Records (or replaces) the job's newest checkpoint.
    case record(CheckpointRow)
    /// Forgets the job's checkpoint (superseded storage is removed by the coordinator).
    case drop(job: String)
    /// Forgets an artifact whose file the coordinator removed (a superseded checkpoint).
    case forgetArtifact(hash: String)

    func apply(_ db: Database) throws {
        switch self {
        case .record(let r):
            try db.cachedStatement(sql: """
                INSERT INTO checkpoints(job, attempt, epoch, hash, size, worker, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(job) DO UPDATE SET attempt = excluded.attempt, epoch = excluded.epoch, hash = excluded.hash,
                    size = excluded.size, worker = excluded.worker, recorded = excluded.recorded
                """).execute(arguments: [r.job, r.attempt, r.epoch, r.hash, r.size, r.worker, r.recorded])
        case .drop(let job):
            try db.cachedStatement(sql: "DELETE FROM checkpoints WHERE job = ?").execute(arguments: [job])
        case .forgetArtifact(let hash):
            try db.cachedStatement(sql: "DELETE FROM artifacts WHERE hash = ?").execute(arguments: [hash])
        }
    }
}

extension SweepStore {
    static func registerCheckpointMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("checkpoints") { db in
            try db.execute(sql: """
                CREATE TABLE checkpoints (
                    job TEXT PRIMARY KEY, attempt INTEGER NOT NULL, epoch INTEGER NOT NULL,
                    hash TEXT NOT NULL, size INTEGER NOT NULL, worker TEXT NOT NULL, recorded REAL NOT NULL);
                """)
        }
    }

    /// Every job's newest checkpoint. Rows a hand edit made impossible (wrong types, numbers out of
    /// range, a malformed hash) are left out: the job then starts from epoch 1, as without one.
    public func checkpoints() throws -> [CheckpointRow] {
        try db.read { db in
            guard try db.tableExists("checkpoints") else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT job, attempt, epoch, hash, size, worker, recorded FROM checkpoints
                WHERE typeof(job) = 'text' AND typeof(hash) = 'text' AND typeof(worker) = 'text'
                  AND typeof(attempt) = 'integer' AND attempt BETWEEN 1 AND ?
                  AND typeof(epoch) = 'integer' AND epoch BETWEEN 1 AND ?
                  AND typeof(size) = 'integer' AND size BETWEEN 0 AND ?
                ORDER BY job
                """, arguments: [Wire.maxAttempt, Wire.maxEpoch, Wire.maxArtifactBytes]).compactMap { r -> CheckpointRow? in
                let row = CheckpointRow(job: r["job"], attempt: r["attempt"], epoch: r["epoch"], hash: r["hash"], size: r["size"],
                                        worker: r["worker"], recorded: (r["recorded"] as Double?) ?? 0)
                return SHA256Hasher.isValidHex(row.hash) ? row : nil
            }
        }
    }
}
