import Foundation

/// The ranksweep wire protocol, in one place (see README.md in this folder for the story).
///
/// Every message is multipart: `[kind][JSON header][binary payload frames...]`. `kind` is an ASCII
/// command name from `Command`; the header is a small JSON object that always has `"v"` (the
/// protocol version); payload frames carry bytes that should not be JSON-escaped (result JSON,
/// job spec JSON, artifact chunks). On the coordinator's ROUTER the routing identity comes first.
public enum Wire {
    /// Bumped on any incompatible change. HELLO with another version is answered by BYE.
    /// 2: HELLO carries the worker's `secret`; BYE carries a typed `code` instead of `rehello`.
    public static let version = 2

    // MARK: ranges (every integer from a peer is checked against these before use)

    /// Attempt numbers are 1...maxAttempt. Far above any real sweep (max_attempts is small), far
    /// below anything that could overflow when the coordinator adds one.
    public static let maxAttempt = 1_000_000_000
    public static func validAttempt(_ a: Int) -> Bool { a >= 1 && a <= maxAttempt }
    /// Longest job id, worker id, host name or artifact file name a peer may send.
    public static let maxNameBytes = 200
    /// Most jobs a HELLO may list as still held.
    public static let maxHeldJobs = 4096
    /// Highest epoch a CHECKPOINT may name.
    public static let maxEpoch = 1_000_000
    /// Largest artifact a PUT may announce.
    public static let maxArtifactBytes: Int64 = 64 << 30

    // MARK: timing (zguide Paranoid Pirate). Overridable for tests, see `Timing`.

    /// How often each side sends HEARTBEAT when it has sent nothing else. One second is the zguide
    /// value: cheap on the wire, quick enough that a dead worker's job is requeued in seconds.
    public static let defaultHeartbeatMs = 1000
    /// A peer silent for this many intervals is dead. Five (not the zguide's three) tolerates a
    /// lossy WAN link (issue 7 runs 5% loss) and a worker busy loading a large artifact.
    public static let defaultLiveness = 5
    /// Worker reconnect back-off: starts here, doubles, stops growing at the maximum. The cap keeps
    /// a worker from waiting long after a restarted coordinator is back.
    public static let defaultReconnectMinMs = 250
    public static let defaultReconnectMaxMs = 8000

    /// A back-off wait spread over [ms/2, ms] ("equal jitter"): workers cut off together (a
    /// coordinator restart, a switch reboot) come back spread out instead of in one storm.
    public static func jittered(_ ms: Int, using generator: inout some RandomNumberGenerator) -> Int {
        guard ms > 1 else { return max(0, ms) }
        return ms - Int.random(in: 0...(ms / 2), using: &generator)
    }

    // MARK: artifacts

    /// Bytes per artifact chunk: large enough that per-message overhead is noise, small enough
    /// that a chunk never approaches the 4 MiB message limit.
    public static let chunkSize = 256 * 1024
    /// Chunks in flight per transfer (credit): fills a WAN pipe (~2.5 MB at 50 ms RTT) while
    /// bounding the memory a transfer can pin in socket queues (zguide fileio3).
    public static let chunkCredit = 10

    // MARK: status

    /// Version of the STATUS-REPLY snapshot (`SweepStatus`); a client refuses another.
    public static let statusSchema = 1
    /// How long `status --connect` waits for STATUS-REPLY before it says nothing answered.
    public static let defaultStatusTimeoutMs = 3000
}

/// Heartbeat settings in effect. Defaults above; `RANKSWEEP_HEARTBEAT_MS` and `RANKSWEEP_LIVENESS`
/// (or command flags) override them so tests can detect death in a fraction of a second.
public struct Timing: Sendable, Codable, Equatable {
    public var heartbeatMs: Int
    public var liveness: Int
    public var reconnectMinMs: Int
    public var reconnectMaxMs: Int

    public init(heartbeatMs: Int = Wire.defaultHeartbeatMs, liveness: Int = Wire.defaultLiveness,
                reconnectMinMs: Int = Wire.defaultReconnectMinMs, reconnectMaxMs: Int = Wire.defaultReconnectMaxMs) {
        self.heartbeatMs = heartbeatMs
        self.liveness = liveness
        self.reconnectMinMs = reconnectMinMs
        self.reconnectMaxMs = reconnectMaxMs
    }

    /// Defaults, then environment overrides.
    public static func fromEnvironment() -> Timing {
        let env = ProcessInfo.processInfo.environment
        var t = Timing()
        if let v = env["RANKSWEEP_HEARTBEAT_MS"].flatMap(Int.init), v > 0 { t.heartbeatMs = v }
        if let v = env["RANKSWEEP_LIVENESS"].flatMap(Int.init), v > 0 { t.liveness = v }
        if let v = env["RANKSWEEP_RECONNECT_MAX_MS"].flatMap(Int.init), v > 0 { t.reconnectMaxMs = v }
        return t
    }

    public var heartbeat: Double { Double(heartbeatMs) / 1000 }
    /// Silence longer than this means the peer is dead.
    public var deadAfter: Double { heartbeat * Double(liveness) }
}

/// Command names (first frame). The raw value is what goes on the wire and in logs.
public enum Command: String, Sendable, CaseIterable {
    // worker -> coordinator
    case hello = "HELLO", ready = "READY", progress = "PROGRESS", done = "DONE", failed = "FAILED"
    case checkpoint = "CHECKPOINT"
    case get = "GET", put = "PUT"
    // status client -> coordinator (any admitted peer; never registers a worker)
    case status = "STATUS"
    // coordinator -> worker
    case welcome = "WELCOME", job = "JOB", cancel = "CANCEL", ack = "ACK", chunk = "CHUNK", putAck = "PUTACK"
    // coordinator -> status client
    case statusReply = "STATUS-REPLY"
    // both ways
    case heartbeat = "HEARTBEAT", bye = "BYE"
}

/// (job, attempt): the key every result, failure and acknowledgement is idempotent on.
public struct JobRef: Codable, Sendable, Hashable {
    public var job: String
    public var attempt: Int
    public init(job: String, attempt: Int) { self.job = job; self.attempt = attempt }
}

/// One input a job needs: a content-addressed artifact placed at `inputs/<name>` for the job.
/// `unpack` means the artifact is a directory archive (`DirectoryArchive`) unpacked to `inputs/<name>/`.
public struct InputRef: Codable, Sendable, Hashable {
    public var name: String
    public var hash: String
    public var size: Int64
    public var unpack: Bool
    public init(name: String, hash: String, size: Int64, unpack: Bool) {
        self.name = name; self.hash = hash; self.size = size; self.unpack = unpack
    }
}

// MARK: headers (one struct per command; every one carries "v")

public struct HelloHeader: Codable, Sendable {
    public var v = Wire.version
    /// Stable for the worker process's life (host-pid-nonce); the routing identity changes per reconnect.
    public var worker: String
    public var host: String
    public var pid: Int32
    public var cores: Int
    public var slots: Int
    public var threads: Int
    /// Jobs this worker is still running (after a reconnect): the coordinator reattaches them.
    public var running: [JobRef]
    /// Random, chosen once per worker process and never shown to anyone but the coordinator: a
    /// HELLO for a worker id the coordinator knows must carry the secret that id first came with
    /// (and with CURVE come from the same key), so no other peer can take over a worker's id.
    public var secret: String = HelloHeader.newSecret()

    public static func newSecret() -> String {
        (0 ..< 4).map { _ in String(format: "%08x", UInt32.random(in: 0 ... .max)) }.joined()
    }
}

public struct WelcomeHeader: Codable, Sendable {
    public var v = Wire.version
    /// The coordinator's heartbeat settings; the worker adopts them so both sides agree.
    public var heartbeatMs: Int
    public var liveness: Int
    /// Jobs from HELLO's `running` that the coordinator no longer wants (already done elsewhere).
    public var cancel: [JobRef]
}

public struct EmptyHeader: Codable, Sendable { public var v = Wire.version }

public struct ProgressHeader: Codable, Sendable {
    public var v = Wire.version
    public var job: String
    public var attempt: Int
    public var epoch: Int?
    public var epochs: Int?
    public var metrics: [String: Double]?
    public var message: String?
}

/// Payload frame 0: the result JSON (object) exactly as the job wrote it.
public struct DoneHeader: Codable, Sendable {
    public var v = Wire.version
    public var job: String
    public var attempt: Int
    /// Output file name -> SHA-256 of the artifact already uploaded with PUT.
    public var artifacts: [String: String]
    public var seconds: Double
}

public struct FailedHeader: Codable, Sendable {
    public var v = Wire.version
    public var job: String
    public var attempt: Int
    public var reason: String
    /// True when the worker hands the job back (stopping): requeued, not counted as a failure.
    public var handback: Bool
    /// True when the job's input is at fault (an unreadable or misfitting file): it would fail the
    /// same way anywhere, so the job fails now instead of being retried. Nil: false.
    public var permanent: Bool? = nil
}

public struct AckHeader: Codable, Sendable {
    public var v = Wire.version
    /// Results (DONE or FAILED) the coordinator has durably recorded or deliberately dropped.
    public var jobs: [JobRef]
}

/// Payload frame 0: the job spec JSON.
public struct JobHeader: Codable, Sendable {
    public var v = Wire.version
    public var job: String
    public var attempt: Int
    public var kind: String
    public var inputs: [InputRef]
    /// Train and fine-tune jobs: upload the newest checkpoint at most this often (and at SIGTERM).
    /// Nil: the job uploads none.
    public var checkpointSeconds: Double? = nil
}

/// A job's newest checkpoint, already uploaded with PUT: the coordinator records it for the job
/// (only from the worker running the job's current attempt) and gives it to the next attempt as
/// the input `checkpoint`.
public struct CheckpointHeader: Codable, Sendable {
    public var v = Wire.version
    public var job: String
    public var attempt: Int
    /// Epochs the checkpoint has completed.
    public var epoch: Int
    public var hash: String
    public var size: Int64
}

public struct CancelHeader: Codable, Sendable {
    public var v = Wire.version
    public var job: String
    public var attempt: Int
    public var reason: String
}

/// What a BYE means, as a typed field: a worker acts on this, never on the free-text reason.
public enum ByeCode: String, Codable, Sendable {
    /// Coordinator -> worker: the sweep is complete; leave.
    case sweepComplete = "sweep-complete"
    /// Coordinator -> worker: "I do not know you" (restarted, or declared you dead): HELLO again.
    case rehello
    /// Coordinator -> peer: refused for good (protocol version, or a worker id that is not yours).
    case refused
    /// Worker -> coordinator: stopping.
    case leaving
}

public struct ByeHeader: Codable, Sendable {
    public var v = Wire.version
    public var code: ByeCode
    /// For people (logs), never for decisions.
    public var reason: String
    public init(code: ByeCode, reason: String) { self.code = code; self.reason = reason }
}

/// Asks for `length` bytes of artifact `hash` from `offset`. Each GET is one unit of credit.
public struct GetHeader: Codable, Sendable {
    public var v = Wire.version
    public var hash: String
    public var offset: Int64
    public var length: Int
}

/// Payload frame 0: the bytes. `error` set (and no payload) when the artifact is unknown.
public struct ChunkHeader: Codable, Sendable {
    public var v = Wire.version
    public var hash: String
    public var offset: Int64
    public var size: Int64
    public var error: String?
}

/// Payload frame 0: the bytes of `hash` at `offset`; `size` is the whole artifact's size.
public struct PutHeader: Codable, Sendable {
    public var v = Wire.version
    public var hash: String
    public var offset: Int64
    public var size: Int64
}

/// Returns one unit of upload credit. `complete` once the artifact is stored and verified (or was
/// already there); `error` when verification failed (the worker restarts the upload).
public struct PutAckHeader: Codable, Sendable {
    public var v = Wire.version
    public var hash: String
    public var offset: Int64
    public var complete: Bool
    public var error: String?
}

/// STATUS: a status client (`ranksweep status --connect`) asks for a snapshot. Not a worker
/// command: the coordinator answers it from memory whoever sends it and registers nobody.
public struct StatusHeader: Codable, Sendable {
    public var v = Wire.version
    public init() {}
}

/// Payload frame 0: the `SweepStatus` JSON (schema `Wire.statusSchema`), built from the
/// coordinator's in-memory state at the moment of the request.
public struct StatusReplyHeader: Codable, Sendable {
    public var v = Wire.version
    public var schema = Wire.statusSchema
    public init() {}
}

// MARK: framing

/// A parsed message: command, raw header bytes (decoded on demand into the command's struct)
/// and payload frames.
public struct WireMessage {
    public var command: Command
    public var header: [UInt8]
    public var payload: [[UInt8]]
    /// The header parsed once by `parse` (hot headers are read from it without Codable).
    var fields: FastJSON.Value = .null

    public init(_ command: Command, header: [UInt8], payload: [[UInt8]] = []) {
        self.command = command; self.header = header; self.payload = payload
    }

    public init<H: Encodable>(_ command: Command, _ header: H, payload: [[UInt8]] = []) {
        self.init(command, header: WireCodec.encode(header), payload: payload)
    }

    public var frames: [[UInt8]] { [Array(command.rawValue.utf8), header] + payload }

    /// Parses `[kind][header][payload...]`. Throws a description fit for the log on anything
    /// malformed: too few frames, unknown command, header not a JSON object with our version.
    public static func parse(_ frames: ArraySlice<[UInt8]>) throws -> WireMessage {
        guard frames.count >= 2 else { throw SweepError.protocolViolation("\(frames.count) frame(s), need at least 2") }
        let first = frames[frames.startIndex]
        guard first.count <= 16, let command = Command(rawValue: String(decoding: first, as: UTF8.self)) else {
            throw SweepError.protocolViolation("unknown command \(printable(first))")
        }
        let header = frames[frames.startIndex + 1]
        guard header.count <= 64 * 1024, let fields = try? FastJSON.parse(header), let object = fields.object else {
            throw SweepError.protocolViolation("\(command.rawValue) header is not a JSON object")
        }
        guard let v = object["v"]?.int else { throw SweepError.protocolViolation("\(command.rawValue) header has no protocol version \"v\"") }
        if v != Wire.version && command != .hello {
            throw SweepError.protocolViolation("\(command.rawValue) has protocol version \(v), expected \(Wire.version)")
        }
        var m = WireMessage(command, header: header, payload: Array(frames.dropFirst(2)))
        m.fields = fields
        return m
    }

    public func decode<H: Decodable>(_ type: H.Type) throws -> H { try WireCodec.decode(type, header, command) }

    /// First bytes of a frame, escaped, for log lines about garbage.
    static func printable(_ bytes: [UInt8]) -> String {
        let s = bytes.prefix(24).map { (32 ..< 127).contains($0) ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined()
        return "\"\(s)\(bytes.count > 24 ? "..." : "")\""
    }
}


/// JSON for headers. One encoder/decoder per thread would be cheaper, but Foundation's are
/// cheap to create; these are created per call so no state is shared across threads.
public enum WireCodec {
    public static func encode<H: Encodable>(_ header: H) -> [UInt8] {
        // Our header types cannot fail to encode (no floats that are NaN reach them unchecked).
        (try? Array(JSONEncoder().encode(header))) ?? Array("{\"v\":\(Wire.version)}".utf8)
    }

    public static func decode<H: Decodable>(_ type: H.Type, _ bytes: [UInt8], _ command: Command) throws -> H {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw SweepError.protocolViolation("\(command.rawValue) header is not valid: \(shortReason(error))")
        }
    }

    static func shortReason(_ error: Error) -> String {
        if case DecodingError.keyNotFound(let key, _) = error { return "missing \"\(key.stringValue)\"" }
        if case DecodingError.typeMismatch(_, let ctx) = error { return "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))" }
        if case DecodingError.dataCorrupted = error { return "not JSON" }
        return "\(error)"
    }
}
