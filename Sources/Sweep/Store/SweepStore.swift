import Basics
import Foundation
import GRDB

/// The coordinator's durable state: one SQLite database (WAL) in the state dir. The coordinator is
/// its only writer; `status` opens it read-only. All writes of one poll cycle go in one
/// transaction (`apply`), so a SIGKILL leaves the database as of the end of some cycle, and no
/// message that depends on a write (an ACK, a JOB) leaves before that write is committed.
///
/// `synchronous=NORMAL` in WAL mode: a commit survives the process being killed (it is in the OS
/// page cache); an OS crash or power loss may lose the last commits, never corrupt the file.
public final class SweepStore {
    public static let fileName = "sweep.sqlite"
    let db: DatabaseQueue
    /// The database file, for error messages.
    let path: String

    public init(stateDir: String, readOnly: Bool = false) throws {
        path = stateDir + "/" + SweepStore.fileName
        var config = Configuration()
        config.readonly = readOnly
        if readOnly {
            guard Files.exists(path) else { throw SweepError.invalid("state dir \(stateDir) has no \(SweepStore.fileName)") }
        } else {
            try AtomicFile.makeDirectory(stateDir)
            config.journalMode = .wal
            // Checkpoints every 256 pages (1 MiB) instead of SQLite's 1,000: the committer thread
            // commits often while the sweep runs, and a WAL that another process (the live report,
            // `status`) keeps from being folded in at close then stays at 1 MiB, not 4.
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 256") }
        }
        config.busyMode = .timeout(5)
        do { db = try DatabaseQueue(path: path, configuration: config) } catch {
            throw SweepError.io("cannot open \(path): \(error)")
        }
        if !readOnly { try migrate() }
    }

    func migrate() throws {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE jobs (
                    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL,
                    deps TEXT NOT NULL, inputs TEXT NOT NULL,
                    state TEXT NOT NULL,            -- JobState (StoreRecords.swift)
                    attempt INTEGER NOT NULL,       -- last attempt number issued (0: never dispatched)
                    failures INTEGER NOT NULL,      -- attempts that count towards max_attempts
                    max_attempts INTEGER NOT NULL,
                    worker TEXT, progress TEXT, reason TEXT, updated REAL);
                CREATE TABLE attempts (
                    job TEXT NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL,
                    started REAL NOT NULL, ended REAL,
                    outcome TEXT,                   -- NULL while open | AttemptOutcome (StoreRecords.swift)
                    reason TEXT, PRIMARY KEY (job, attempt));
                CREATE TABLE results (
                    job TEXT PRIMARY KEY, attempt INTEGER NOT NULL, worker TEXT NOT NULL,
                    result TEXT NOT NULL, artifacts TEXT NOT NULL, seconds REAL NOT NULL, finished REAL NOT NULL);
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL,
                    job TEXT, attempt INTEGER, worker TEXT, detail TEXT);
                CREATE TABLE workers (
                    id TEXT PRIMARY KEY, host TEXT NOT NULL, cores INTEGER NOT NULL, slots INTEGER NOT NULL,
                    threads INTEGER NOT NULL, state TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
                CREATE TABLE artifacts (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, origin TEXT NOT NULL, created REAL NOT NULL);
                CREATE INDEX jobs_state ON jobs(state);
                CREATE INDEX events_kind ON events(kind);
                """)
        }
        m.registerMigration("v2") { db in
            // Aggregated events (EventCounts): `count` messages in the row's minute, `bucket` its key.
            // Worker identities: the CURVE key and the SHA-256 of the HELLO secret an id is bound to.
            try db.execute(sql: """
                ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE events ADD COLUMN bucket TEXT;
                CREATE UNIQUE INDEX events_bucket ON events(bucket) WHERE bucket IS NOT NULL;
                ALTER TABLE workers ADD COLUMN key TEXT;
                ALTER TABLE workers ADD COLUMN secret_hash TEXT;
                """)
        }
        SweepStore.registerCheckpointMigration(&m)
        do { try m.migrate(db) } catch { throw SweepError.io("cannot set up the state database: \(error)") }
    }

    // MARK: sweep creation

    public func meta(_ key: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    /// Sets (or, with nil, removes) one meta value.
    public func setMeta(_ key: String, _ value: String?) throws {
        try db.write { db in
            if let value {
                try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", arguments: [key, value])
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [key])
            }
        }
    }

    /// Writes the planned jobs and the sweep's identity in one transaction.
    public func createSweep(jobs: [PlannedJob], maxAttempts: Int, planHash: String, sweepJSON: String) throws {
        let now = wallClockSeconds()
        try db.write { db in
            for (k, v) in [("plan_hash", planHash), ("sweep", sweepJSON), ("created", String(now))] {
                try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", arguments: [k, v])
            }
            try SweepStore.insertQueued(jobs, firstSeq: 0, maxAttempts: maxAttempts, now: now, db)
            try db.execute(sql: "INSERT INTO events(time, kind, detail) VALUES (?, 'sweep-created', ?)", arguments: [now, "\(jobs.count) jobs"])
        }
    }

    /// Inserts planned jobs as queued, numbered from `firstSeq` in plan order.
    private static func insertQueued(_ jobs: [PlannedJob], firstSeq: Int, maxAttempts: Int, now: Double, _ db: Database) throws {
        let st = try db.makeStatement(sql: """
            INSERT INTO jobs(id, seq, kind, spec, deps, inputs, state, attempt, failures, max_attempts, updated)
            VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, 0, ?, ?)
            """)
        let enc = JSONEncoder()
        for (i, j) in jobs.enumerated() {
            let deps = String(decoding: try enc.encode(j.deps), as: UTF8.self)
            let inputs = String(decoding: try enc.encode(j.inputs), as: UTF8.self)
            try st.execute(arguments: [j.id, firstSeq + i, j.kind, j.spec, deps, inputs, maxAttempts, now])
        }
    }

    /// Appends jobs to an existing sweep (a grown sweep file, or a targeted search's next probes)
    /// after the ones it has, and records the new plan hash when given, in one transaction.
    public func addJobs(_ jobs: [PlannedJob], maxAttempts: Int, planHash: String?, sweepJSON: String?, event: String) throws {
        let now = wallClockSeconds()
        try db.write { db in
            for (k, v) in [("plan_hash", planHash), ("sweep", sweepJSON)] {
                if let v { try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", arguments: [k, v]) }
            }
            let first = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), -1) + 1 FROM jobs") ?? 0
            try SweepStore.insertQueued(jobs, firstSeq: first, maxAttempts: maxAttempts, now: now, db)
            if !jobs.isEmpty {
                try db.execute(sql: "INSERT INTO events(time, kind, detail) VALUES (?, ?, ?)", arguments: [now, event, "\(jobs.count) jobs added"])
            }
        }
    }

    /// Puts failed jobs back in the queue with a fresh attempt budget (`failures` 0; the attempt
    /// number goes on, so attempts stay unique), in one transaction, with a `retry` event each.
    public func requeueForRetry(_ ids: [String]) throws {
        let now = wallClockSeconds()
        try db.write { db in
            for id in ids {
                try db.execute(sql: "UPDATE jobs SET state = 'queued', failures = 0, reason = NULL, worker = NULL, updated = ? WHERE id = ? AND state = 'failed'",
                               arguments: [now, id])
                try db.execute(sql: "INSERT INTO events(time, kind, job, detail) VALUES (?, 'retry', ?, 'requeued with a fresh attempt budget')",
                               arguments: [now, id])
            }
        }
    }

    // MARK: loading (resume)

    public struct StoredJob {
        public var job: PlannedJob
        public var state: JobState
        public var attempt: Int
        public var failures: Int
        public var maxAttempts: Int
        /// Why a failed job failed.
        public var reason: String?
    }

    public func loadJobs() throws -> [StoredJob] {
        try jobs().map { r in
            StoredJob(job: PlannedJob(id: r.id, kind: r.kind, spec: r.spec, deps: r.deps, inputs: r.inputs),
                      state: r.state, attempt: r.attempt, failures: r.failures, maxAttempts: r.maxAttempts, reason: r.reason)
        }
    }

    /// Attempts without an outcome: running when the previous coordinator died.
    public func openAttempts() throws -> [(JobRef, String)] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT job, attempt, worker FROM attempts WHERE outcome IS NULL").map {
                (JobRef(job: $0["job"], attempt: $0["attempt"]), $0["worker"])
            }
        }
    }

    /// Attempts that ended as `orphaned` (coordinator restart), with the worker each was
    /// dispatched to: its result is still welcome from that worker.
    public func orphanedAttempts() throws -> [(JobRef, String)] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT job, attempt, worker FROM attempts WHERE outcome = 'orphaned'").map {
                (JobRef(job: $0["job"], attempt: $0["attempt"]), $0["worker"])
            }
        }
    }

    /// What each known worker id is bound to (see `WorkerIdentity`).
    func workerIdentities() throws -> [String: WorkerIdentity] {
        try db.read { db in
            var out: [String: WorkerIdentity] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT id, key, secret_hash FROM workers") {
                out[r["id"]] = WorkerIdentity(key: r["key"], secretHash: r["secret_hash"])
            }
            return out
        }
    }

    // MARK: validation on open

    /// Checks every number the coordinator does arithmetic on, so an impossible row (a hand edit,
    /// a bug of an older build, a disk error) is one line naming table, job and value, with the
    /// SQL that repairs it — instead of a trap on every restart.
    public func validate(stateDir: String) throws {
        let file = stateDir + "/" + SweepStore.fileName
        let maxA = Wire.maxAttempt
        func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
        func fail(_ table: String, _ job: String, _ what: String, _ fix: String) -> SweepError {
            .invalid("state dir \(stateDir): table \(table), job \"\(job)\": \(what); repair with: sqlite3 \(file) \"\(fix)\"")
        }
        try db.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT COALESCE(CAST(id AS TEXT), '') AS id, COALESCE(CAST(state AS TEXT), '') AS state, attempt, failures, max_attempts,
                       typeof(id) = 'text' AND typeof(kind) = 'text' AND typeof(spec) = 'text' AND typeof(deps) = 'text'
                           AND typeof(inputs) = 'text' AND typeof(state) = 'text' AS texts
                FROM jobs WHERE NOT texts OR state NOT IN ('queued', 'running', 'done', 'failed')
                   OR typeof(attempt) != 'integer' OR attempt < 0 OR attempt > ?
                   OR typeof(failures) != 'integer' OR failures < 0 OR failures > ?
                   OR typeof(max_attempts) != 'integer' OR max_attempts < 1 OR max_attempts > ?
                ORDER BY seq LIMIT 1
                """, arguments: [maxA, maxA, maxA])
            if let r = rows.first {
                let id: String = r["id"], q = quoted(id)
                let state: String = r["state"]
                if !(r["texts"] as Bool) {
                    throw SweepError.invalid("state dir \(stateDir): table jobs, job \"\(id)\": id, kind, spec, deps, inputs or state is not text "
                                             + "(a row this build did not write); use a new --state-dir")
                }
                if !["queued", "running", "done", "failed"].contains(state) {
                    throw fail("jobs", id, "state \(state.prefix(40)) is not queued, running, done or failed",
                               "UPDATE jobs SET state = 'queued' WHERE id = \(q)")
                }
                func inRange(_ column: String, _ low: Int64) -> Bool {
                    let value: DatabaseValue = r[column]
                    guard case .int64(let n) = value.storage else { return false }
                    return n >= low && n <= Int64(maxA)
                }
                func shown(_ column: String) -> String {
                    let value: DatabaseValue = r[column]
                    if case .int64(let n) = value.storage { return String(n) }
                    return String(value.description.prefix(40))
                }
                if !inRange("attempt", 0) {
                    throw fail("jobs", id, "attempt \(shown("attempt")) is out of range 0...\(maxA)",
                               "UPDATE jobs SET attempt = (SELECT COALESCE(MAX(attempt), 0) FROM attempts WHERE job = \(q) AND attempt BETWEEN 1 AND \(maxA)) WHERE id = \(q)")
                }
                if !inRange("failures", 0) {
                    throw fail("jobs", id, "failures \(shown("failures")) is out of range 0...\(maxA)", "UPDATE jobs SET failures = 0 WHERE id = \(q)")
                }
                throw fail("jobs", id, "max_attempts \(shown("max_attempts")) is out of range 1...\(maxA)", "UPDATE jobs SET max_attempts = 3 WHERE id = \(q)")
            }
            if let r = try Row.fetchOne(db, sql: """
                SELECT job, attempt FROM attempts WHERE typeof(attempt) != 'integer' OR attempt < 1 OR attempt > ? LIMIT 1
                """, arguments: [maxA]) {
                let job: String = r["job"]
                let value: DatabaseValue = r["attempt"]
                let a = value.description
                throw fail("attempts", job, "attempt \(a) is out of range 1...\(maxA)",
                           "DELETE FROM attempts WHERE job = \(quoted(job)) AND attempt = \(a)")
            }
            if let r = try Row.fetchOne(db, sql: """
                SELECT COALESCE(CAST(id AS TEXT), '') AS id FROM workers WHERE typeof(id) != 'text' OR (key IS NOT NULL AND typeof(key) != 'text')
                   OR (secret_hash IS NOT NULL AND typeof(secret_hash) != 'text') LIMIT 1
                """) {
                let id: String = r["id"]
                throw SweepError.invalid("state dir \(stateDir): table workers, worker \"\(id)\": id, key or secret_hash is not text; "
                                         + "repair with: sqlite3 \(file) \"UPDATE workers SET key = NULL, secret_hash = NULL WHERE CAST(id AS TEXT) = \(quoted(id))\"")
            }
        }
    }

    /// Produced artifacts of finished jobs (file name -> hash), to resolve their dependents' inputs.
    public func resultArtifacts() throws -> [String: [String: String]] {
        Dictionary(try results().map { ($0.job, $0.artifacts) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: writes

    /// One state change. The coordinator collects them during a poll cycle and applies them together.
    public enum Op {
        case dispatch(JobRef, worker: String)
        case reattach(JobRef, worker: String)
        case done(JobRef, worker: String, result: String, artifacts: String, seconds: Double)
        case attemptEnded(JobRef, outcome: AttemptOutcome, reason: String)
        case requeue(job: String, failures: Int)
        case failJob(job: String, failures: Int, reason: String)
        case progress(job: String, text: String)
        case event(kind: String, job: String?, attempt: Int?, worker: String?, detail: String)
        case worker(id: String, host: String, cores: Int, slots: Int, threads: Int, state: String)
        /// Binds a worker id to its CURVE key and HELLO secret hash, unless already bound.
        case workerIdentity(id: String, key: String?, secretHash: String)
        /// An aggregated event (EventCounts): inserted once per bucket, its count updated after.
        case countedEvent(kind: String, peer: String, bucket: String, time: Double, job: String?, attempt: Int?, detail: String, count: Int)
        case workerState(id: String, state: String)
        case artifact(hash: String, size: Int64, origin: String)
        /// A job's newest checkpoint recorded or dropped (StoreCheckpoints.swift).
        case checkpoint(CheckpointOp)
    }

    /// Applies all ops in one transaction.
    public func apply(_ ops: [Op]) throws {
        if ops.isEmpty { return }
        let now = wallClockSeconds()
        try db.write { db in
            for op in ops {
                switch op {
                case .dispatch(let ref, let worker):
                    try db.cachedStatement(sql: "UPDATE jobs SET state = 'running', attempt = ?, worker = ?, progress = NULL, updated = ? WHERE id = ?")
                        .execute(arguments: [ref.attempt, worker, now, ref.job])
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO attempts(job, attempt, worker, started) VALUES (?, ?, ?, ?)")
                        .execute(arguments: [ref.job, ref.attempt, worker, now])
                case .reattach(let ref, let worker):
                    try db.cachedStatement(sql: "UPDATE jobs SET state = 'running', worker = ?, attempt = MAX(attempt, ?), updated = ? WHERE id = ?")
                        .execute(arguments: [worker, ref.attempt, now, ref.job])
                    try db.cachedStatement(sql: """
                        INSERT INTO attempts(job, attempt, worker, started) VALUES (?, ?, ?, ?)
                        ON CONFLICT(job, attempt) DO UPDATE SET outcome = NULL, ended = NULL, reason = NULL, worker = excluded.worker
                        """).execute(arguments: [ref.job, ref.attempt, worker, now])
                case .done(let ref, let worker, let result, let artifacts, let seconds):
                    try db.cachedStatement(sql: "UPDATE jobs SET state = 'done', worker = ?, updated = ? WHERE id = ?")
                        .execute(arguments: [worker, now, ref.job])
                    try db.cachedStatement(sql: "UPDATE attempts SET ended = ?, outcome = 'done' WHERE job = ? AND attempt = ?")
                        .execute(arguments: [now, ref.job, ref.attempt])
                    try db.cachedStatement(sql: "INSERT INTO results(job, attempt, worker, result, artifacts, seconds, finished) VALUES (?, ?, ?, ?, ?, ?, ?)")
                        .execute(arguments: [ref.job, ref.attempt, worker, result, artifacts, seconds, now])
                    try db.cachedStatement(sql: "INSERT INTO events(time, kind, job, attempt, worker) VALUES (?, 'done', ?, ?, ?)")
                        .execute(arguments: [now, ref.job, ref.attempt, worker])
                case .attemptEnded(let ref, let outcome, let reason):
                    try db.cachedStatement(sql: "UPDATE attempts SET ended = ?, outcome = ?, reason = ? WHERE job = ? AND attempt = ?")
                        .execute(arguments: [now, outcome.rawValue, reason, ref.job, ref.attempt])
                case .requeue(let job, let failures):
                    try db.cachedStatement(sql: "UPDATE jobs SET state = 'queued', failures = ?, worker = NULL, updated = ? WHERE id = ?")
                        .execute(arguments: [failures, now, job])
                case .failJob(let job, let failures, let reason):
                    try db.cachedStatement(sql: "UPDATE jobs SET state = 'failed', failures = ?, worker = NULL, reason = ?, updated = ? WHERE id = ?")
                        .execute(arguments: [failures, reason, now, job])
                    try db.cachedStatement(sql: "INSERT INTO events(time, kind, job, detail) VALUES (?, 'failed', ?, ?)")
                        .execute(arguments: [now, job, reason])
                case .progress(let job, let text):
                    try db.cachedStatement(sql: "UPDATE jobs SET progress = ? WHERE id = ?").execute(arguments: [text, job])
                case .event(let kind, let job, let attempt, let worker, let detail):
                    try db.cachedStatement(sql: "INSERT INTO events(time, kind, job, attempt, worker, detail) VALUES (?, ?, ?, ?, ?, ?)")
                        .execute(arguments: [now, kind, job, attempt, worker, detail])
                case .worker(let id, let host, let cores, let slots, let threads, let state):
                    try db.cachedStatement(sql: """
                        INSERT INTO workers(id, host, cores, slots, threads, state, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET state = excluded.state, last_seen = excluded.last_seen
                        """).execute(arguments: [id, host, cores, slots, threads, state, now, now])
                case .workerIdentity(let id, let key, let secretHash):
                    // Bound at first use and never overwritten.
                    try db.cachedStatement(sql: "UPDATE workers SET key = COALESCE(key, ?), secret_hash = COALESCE(secret_hash, ?) WHERE id = ?")
                        .execute(arguments: [key, secretHash, id])
                case .countedEvent(let kind, let peer, let bucket, let time, let job, let attempt, let detail, let count):
                    try db.cachedStatement(sql: """
                        INSERT INTO events(time, kind, job, attempt, worker, detail, count, bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(bucket) WHERE bucket IS NOT NULL DO UPDATE SET count = excluded.count
                        """).execute(arguments: [time, kind, job, attempt, peer, detail, count, bucket])
                case .workerState(let id, let state):
                    try db.cachedStatement(sql: "UPDATE workers SET state = ?, last_seen = ? WHERE id = ?").execute(arguments: [state, now, id])
                case .artifact(let hash, let size, let origin):
                    try db.cachedStatement(sql: "INSERT OR IGNORE INTO artifacts(hash, size, origin, created) VALUES (?, ?, ?, ?)")
                        .execute(arguments: [hash, size, origin, now])
                case .checkpoint(let op):
                    try op.apply(db)
                }
            }
        }
    }

    // MARK: raw SQL for tests only (internal: readers use the typed API in StoreRecords.swift)

    func count(_ sql: String, _ args: StatementArguments = []) throws -> Int {
        try db.read { try Int.fetchOne($0, sql: sql, arguments: args) ?? 0 }
    }

    func rows(_ sql: String, _ args: StatementArguments = []) throws -> [[String: String]] {
        try db.read { db in
            try Row.fetchAll(db, sql: sql, arguments: args).map { row in
                var d: [String: String] = [:]
                for (col, value) in row { d[col] = value.isNull ? "" : (String.fromDatabaseValue(value) ?? value.description) }
                return d
            }
        }
    }
}
