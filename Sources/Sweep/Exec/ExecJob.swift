import Basics
import CSupport
import Foundation

/// What a job executor gets inside an `exec-job` child process.
public struct ExecJobContext: Sendable {
    public let kind: String
    /// The job spec JSON (TrainJobSpec / CompressJobSpec / the kind's own).
    public let spec: Data
    /// Inputs by name: `inputs/dataset/`, `inputs/model.safetensors` (see `JobFiles`).
    public let inputsDir: String
    /// Where the job writes its output files; `result.json` is written from the returned value.
    public let outDir: String
    /// Where the job writes its checkpoints (one file per epoch, `checkpointPath`); nil: it writes none.
    /// Not `outDir`: a checkpoint is not an output, the worker uploads it on its own schedule.
    public let checkpointDir: String?

    public init(kind: String, spec: Data, inputsDir: String, outDir: String, checkpointDir: String? = nil) {
        self.kind = kind; self.spec = spec; self.inputsDir = inputsDir; self.outDir = outDir; self.checkpointDir = checkpointDir
    }

    /// The checkpoint this attempt resumes from (`inputs/checkpoint`, given when an earlier attempt
    /// of the job uploaded one), or nil.
    public var resumeCheckpoint: String? {
        let path = input(Coordinator.checkpointInput)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Where epoch `epoch`'s checkpoint goes, or nil when this job writes none.
    public func checkpointPath(epoch: Int) -> String? { checkpointDir.map { $0 + "/epoch-\(epoch)" } }

    /// Tells the worker a checkpoint is complete (written atomically, never changed after): it is
    /// hashed here, in the job's process, so the worker's socket thread never reads a large file.
    public func checkpointWritten(epoch: Int, path: String) {
        guard let (hash, size) = try? SHA256Hasher.file(path) else { return }
        let p = ChildProgress(checkpoint: ChildCheckpoint(epoch: epoch, path: path, hash: hash, size: size))
        guard let data = try? JSONEncoder().encode(p) else { return }
        print("PROGRESS " + String(decoding: data, as: UTF8.self))
    }

    public func decodeSpec<T: Decodable>(_ type: T.Type) throws -> T {
        do { return try JSONDecoder().decode(type, from: spec) } catch {
            throw SweepError.invalid("job spec is not a valid \(T.self): \(WireCodec.shortReason(error))")
        }
    }

    /// Reports progress: the worker forwards it to the coordinator's display and `status`.
    public func progress(epoch: Int? = nil, of epochs: Int? = nil, metrics: [String: Double] = [:], message: String? = nil) {
        let p = ChildProgress(epoch: epoch, epochs: epochs, metrics: metrics.isEmpty ? nil : metrics, message: message)
        guard let data = try? JSONEncoder().encode(p) else { return }
        print("PROGRESS " + String(decoding: data, as: UTF8.self))
    }

    public func input(_ name: String) -> String { inputsDir + "/" + name }
    public func output(_ name: String) -> String { outDir + "/" + name }
}

/// A job kind run in a child process: returns the result (a JSON object) that becomes result.json.
public typealias ExecJobExecutor = @Sendable (ExecJobContext) throws -> [String: JSONValue]

/// A JSON value for results (Codable, Sendable).
public enum JSONValue: Codable, Sendable, Equatable {
    case number(Double), string(String), bool(Bool), array([JSONValue]), object([String: JSONValue]), null

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) { self = .string(s) } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d): try c.encode(d.isFinite ? d : 0)
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }
}

/// A job failed because of its input — a file that cannot be read or does not fit — so it would
/// fail the same way on any worker: the job fails at once instead of being retried. The message
/// names the user's own file (see `DataSpec.origin`), not the worker's cached copy.
public struct JobInputError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs one job in this (child) process: the body of `ranksweep exec-job`. Exit status 0 with
/// result.json written = DONE; anything else = FAILED with the last stderr line as the reason.
public enum ExecJob {
    /// `exec-job`'s exit status for a `JobInputError` (sysexits' EX_DATAERR); the worker reports
    /// such a failure as permanent.
    public static let inputErrorStatus: Int32 = 65

    public static func run(_ ctx: ExecJobContext, executors: [String: ExecJobExecutor]) throws {
        // If the worker is SIGKILLed, its job child must not run on as an orphan.
        _ = csupport_die_with_parent()
        guard let executor = executors[ctx.kind] else {
            throw SweepError.invalid("unknown job kind \(ctx.kind) (known: \(executors.keys.sorted().joined(separator: ", ")))")
        }
        let result = try executor(ctx)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try AtomicFile.write(try enc.encode(result), to: ctx.output(JobFiles.result))
    }

    /// The test kinds every build has: `fail`, `crash`, `sleep` (child path), `hang` (never ends and
    /// ignores SIGTERM: only the SIGKILL that follows a cancel ends it).
    public static let builtinExecutors: [String: ExecJobExecutor] = [
        "fail": { ctx in
            let message = (try? JSONSerialization.jsonObject(with: ctx.spec) as? [String: Any])?["message"] as? String ?? "job failed on purpose"
            throw SweepError.invalid(message)
        },
        "crash": { _ in
            FileHandle.standardError.write(Data("crashing on purpose\n".utf8))
            abort()
        },
        "hang": { _ in
            signal(SIGTERM) { _ in }
            FileHandle.standardError.write(Data("hanging on purpose, ignoring SIGTERM\n".utf8))
            while true { sleep(1) }
        },
        "sleep": { ctx in
            let spec = try ctx.decodeSpec(SleepSpec.self)
            let steps = max(1, Int(spec.seconds / 0.1))
            for i in 0 ..< steps {
                usleep(UInt32(spec.seconds / Double(steps) * 1e6))
                if i % 5 == 4 || i == steps - 1 { ctx.progress(epoch: i + 1, of: steps, metrics: ["loss": 1.0 / Double(i + 1)]) }
            }
            var result: [String: JSONValue] = ["slept": .number(spec.seconds)]
            var inputs: [String: JSONValue] = [:]
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: ctx.inputsDir)) ?? []).sorted() {
                let path = ctx.input(name)
                if Files.isDirectory(path) {
                    let files = (try? DirectoryArchive.listFiles((path as NSString).resolvingSymlinksInPath)) ?? []
                    inputs[name] = .number(Double(files.count))
                } else if let h = try? SHA256Hasher.file(path) {
                    inputs[name] = .string(h.hash)
                }
            }
            result["inputs"] = .object(inputs)
            if spec.produceBytes > 0 {
                var bytes = [UInt8](repeating: 0, count: spec.produceBytes)
                var x: UInt32 = 2463534242
                for i in 0 ..< bytes.count { x ^= x << 13; x ^= x >> 17; x ^= x << 5; bytes[i] = UInt8(truncatingIfNeeded: x) }
                try AtomicFile.write(Data(bytes), to: ctx.output("out.bin"))
                result["produced"] = .string(SHA256Hasher.hex(bytes))
            }
            return result
        },
    ]
}
