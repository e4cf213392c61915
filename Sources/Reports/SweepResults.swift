import Compression
import Foundation
import Pipeline
import Sweep

/// One attempt at a job, as the coordinator recorded it.
public struct AttemptRecord: Sendable {
    public var attempt: Int
    public var worker: String
    /// nil while it runs.
    public var outcome: AttemptOutcome?
    public var reason: String
}

/// One job of the sweep with everything the report needs: its spec, state, attempts and, when it
/// finished, its decoded result and artifact hashes.
public struct JobRecord: Sendable {
    /// The store's job states.
    public typealias Status = JobState

    public var id: String
    /// `train` or `compress` (other kinds, e.g. test jobs, are kept but not tabulated).
    public var kind: String
    public var status: Status
    /// Attempts issued so far (0: never dispatched).
    public var attempts: Int
    public var maxAttempts: Int
    /// The worker id of the accepted result, or of the running attempt.
    public var worker: String?
    /// The worker's host name (from the workers table).
    public var host: String?
    /// Why the job failed (all attempts used), when it did.
    public var failureReason: String?
    public var attemptLog: [AttemptRecord]
    public var trainSpec: TrainJobSpec?
    public var compressSpec: CompressJobSpec?
    public var trainResult: TrainResult?
    public var compressResult: CompressResult?
    /// A budget sweep's `allocate` job.
    public var allocationSpec: AllocationJobSpec?
    public var allocationResult: AllocationResult?
    /// Output file name -> SHA-256 of the artifact in `state-dir/artifacts/`.
    public var artifacts: [String: String]
    /// Wall time the accepted attempt took on its worker.
    public var seconds: Double?
    /// Inputs that were stored artifacts (input name -> hash): the packed dataset, a given baseline.
    public var inputArtifacts: [String: String]

    /// The seed this job's split and training used.
    public var seed: Int? { trainSpec?.seed ?? compressSpec?.seed }
}

/// Everything a report is built from: the sweep's jobs read from its state dir (read-only).
public struct SweepResults: Sendable {
    public var stateDir: String
    /// In plan order (train jobs first within each seed).
    public var jobs: [JobRecord]
    /// The targeted searches of the sweep (`target:`), as the coordinator stored them.
    public var searches: [SearchDefinition] = []

    public var trainJobs: [JobRecord] { jobs.filter { $0.kind == "train" } }
    public var compressJobs: [JobRecord] { jobs.filter { $0.kind == "compress" } }
    public func count(_ status: JobRecord.Status) -> Int { jobs.filter { $0.status == status }.count }
    public var isComplete: Bool { jobs.allSatisfy { $0.status == .done || $0.status == .failed } }

    /// Path of an artifact in the state dir's content-addressed store.
    public func artifactPath(_ hash: String) -> String { stateDir + "/artifacts/" + hash }

    /// The train job a compress job depends on (nil for a given baseline model).
    public func baseline(of job: JobRecord) -> JobRecord? {
        guard let id = job.compressSpec?.baselineJob else { return nil }
        return jobs.first { $0.id == id && $0.kind == "train" }
    }

    /// Reads `stateDir/sweep.sqlite` read-only (safe while the coordinator runs: WAL).
    public static func load(stateDir: String) throws -> SweepResults {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: stateDir, isDirectory: &isDir), isDir.boolValue else {
            throw ReportError("state dir \(stateDir) does not exist or is not a directory")
        }
        guard FileManager.default.fileExists(atPath: stateDir + "/" + SweepStore.fileName) else {
            throw ReportError("state dir \(stateDir) has no \(SweepStore.fileName) (not a sweep state dir)")
        }
        let jobRows: [JobRow], attemptRows: [AttemptRow], resultRows: [JobResultRow], workerRows: [WorkerRow]
        var searches: [SearchDefinition] = []
        do {
            let store = try SweepStore(stateDir: stateDir, readOnly: true)
            if let text = try store.meta("target_searches") {
                searches = try decode([SearchDefinition].self, text, "\(stateDir)/\(SweepStore.fileName): meta target_searches")
            }
            jobRows = try store.jobs()
            attemptRows = try store.attempts()
            resultRows = try store.results()
            workerRows = try store.workers()
        } catch {
            throw ReportError("cannot read \(stateDir)/\(SweepStore.fileName): \(error)")
        }
        let hosts = Dictionary(workerRows.map { ($0.id, $0.host) }, uniquingKeysWith: { a, _ in a })
        let attempts = Dictionary(grouping: attemptRows, by: \.job)
        let results = Dictionary(resultRows.map { ($0.job, $0) }, uniquingKeysWith: { a, _ in a })

        var jobs: [JobRecord] = []
        for row in jobRows {
            let id = row.id
            func context(_ what: String) -> String { "\(stateDir)/\(SweepStore.fileName): job \(id): \(what)" }
            let kind = row.kind
            let result = results[id]
            let status: JobState = result != nil ? .done : row.state
            var job = JobRecord(
                id: id, kind: kind, status: status, attempts: row.attempt, maxAttempts: row.maxAttempts,
                worker: (result?.worker).flatMap(nonEmpty) ?? row.worker.flatMap(nonEmpty),
                host: nil, failureReason: status == .failed ? row.reason : nil,
                attemptLog: (attempts[id] ?? []).map { AttemptRecord(attempt: $0.attempt, worker: $0.worker, outcome: $0.outcome, reason: $0.reason ?? "") },
                trainSpec: nil, compressSpec: nil, trainResult: nil, compressResult: nil,
                allocationSpec: nil, allocationResult: nil, artifacts: result?.artifacts ?? [:],
                seconds: result?.seconds,
                inputArtifacts: [:])
            job.host = job.worker.flatMap { hosts[$0] }
            let spec = row.spec
            for input in row.inputs { if let hash = input.hash { job.inputArtifacts[input.name] = hash } }
            switch kind {
            case "train":
                job.trainSpec = try decode(TrainJobSpec.self, spec, context("spec"))
                if let r = result?.result { job.trainResult = try decode(TrainResult.self, r, context("result")) }
            case "compress":
                job.compressSpec = try decode(CompressJobSpec.self, spec, context("spec"))
                if let r = result?.result { job.compressResult = try decode(CompressResult.self, r, context("result")) }
            case "allocate":
                job.allocationSpec = try decode(AllocationJobSpec.self, spec, context("spec"))
                if let r = result?.result { job.allocationResult = try decode(AllocationResult.self, r, context("result")) }
            default:
                break
            }
            jobs.append(job)
        }
        return SweepResults(stateDir: stateDir, jobs: jobs, searches: searches)
    }

    /// JSON as the jobs write it (NaN and infinities as the strings "nan", "inf", "-inf").
    static func decode<T: Decodable>(_ type: T.Type, _ text: String, _ context: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try decoder.decode(type, from: Data(text.utf8)) } catch {
            throw ReportError("\(context) is not a valid \(T.self) (\(error))")
        }
    }
}

private func nonEmpty(_ s: String) -> String? { s.isEmpty ? nil : s }
