import Basics
import Compression
import Engine
import Foundation
import Imaging
import Pipeline
import Sweep

/// The `train` and `compress` job kinds: the sweep's job specs mapped onto Pipeline's jobs, run in
/// the worker's child process (`ranksweep exec-job`). Each returns Pipeline's own result
/// (`metrics.json` / `result.json` shape) as the job's result object; the files the job writes
/// (model, history, per-layer table) travel back to the coordinator as artifacts. The job spec
/// becomes Pipeline's spec in one place (JobSpecMapping.swift), shared with the report's overlays.
public enum PipelineExecutors {
    public static let all: [String: ExecJobExecutor] = ["train": train, "compress": compress, "sensitivity": sensitivity, "allocate": allocate]

    /// Runs a job body; a bad input file becomes a `JobInputError` (not retried) whose message
    /// names the user's own files instead of the worker's cached copies under `inputs/`.
    static func namingUserFiles<T>(_ ctx: ExecJobContext, dataOrigin: String?, modelOrigin: String?, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            let isInputError = error is ModelFileError || error is DatasetError || error is ImageFileError
            guard isInputError else { throw error }
            var message = "\(error)"
            var names: [(String, String)] = []
            if let dataOrigin {
                let cached = ctx.input(JobFiles.dataset)
                names.append((cached, dataOrigin))
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: cached) { names.append((target, dataOrigin)) }
            }
            let model = ctx.input(JobFiles.model)
            names.append((model, modelOrigin ?? "the baseline model"))
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: model) { names.append((target, modelOrigin ?? "the baseline model")) }
            for (cached, user) in names.sorted(by: { $0.0.count > $1.0.count }) {
                message = message.replacingOccurrences(of: cached, with: user)
            }
            throw JobInputError(message)
        }
    }

    static func progressSink(_ ctx: ExecJobContext) -> (TrainingEvent) -> Void {
        var epochs = 0
        return { event in
            switch event {
            case let .started(total, _, _, _, _): epochs = total
            case let .epochFinished(r):
                ctx.progress(epoch: r.epoch, of: epochs, metrics: ["loss": r.trainLoss, "val_loss": r.valLoss, "val_dice": r.valDice, "seconds": r.seconds])
            case let .note(text): ctx.progress(message: text)
            case .step: break
            }
        }
    }

    /// A sweep job's checkpoints: one file per epoch in the work dir the worker gave (it uploads
    /// them), and the earlier attempt's checkpoint to resume from when the coordinator sent one. One
    /// that cannot be read (damaged, from another build) is skipped with a note: the job starts over.
    static func checkpointing(_ ctx: ExecJobContext) -> Checkpointing {
        var c = Checkpointing()
        if ctx.checkpointDir != nil {
            c.path = { epoch in ctx.checkpointPath(epoch: epoch)! }
            c.written = { epoch, path in ctx.checkpointWritten(epoch: epoch, path: path) }
        }
        if let resume = ctx.resumeCheckpoint {
            do {
                _ = try TrainingCheckpoint.read(path: resume)
                c.resumeFrom = resume
            } catch {
                ctx.progress(message: "the earlier attempt's checkpoint is unusable (\(error)); starting from epoch 1")
            }
        }
        return c
    }

    static func asJSONValue<T: Encodable>(_ value: T) throws -> [String: JSONValue] {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try JSONDecoder().decode([String: JSONValue].self, from: encoder.encode(value))
    }

    static let train: ExecJobExecutor = { ctx in
        let job = try ctx.decodeSpec(TrainJobSpec.self)
        let spec = TrainSpec(job: job, inputsDir: ctx.inputsDir)
        let result = try namingUserFiles(ctx, dataOrigin: job.data.origin, modelOrigin: nil) {
            try TrainJob.run(spec, outDir: ctx.outDir, checkpoints: checkpointing(ctx), events: progressSink(ctx))
        }
        return try asJSONValue(result)
    }

    static let compress: ExecJobExecutor = { ctx in
        let job = try ctx.decodeSpec(CompressJobSpec.self)
        let spec = try CompressSpec(job: job, inputsDir: ctx.inputsDir)
        let result = try namingUserFiles(ctx, dataOrigin: job.data.origin, modelOrigin: job.baselineOrigin ?? "the model of job \(job.baselineJob)") {
            try CompressJob.run(spec, baselinePath: ctx.input(JobFiles.model), outDir: ctx.outDir, checkpoints: checkpointing(ctx),
                                events: progressSink(ctx))
        }
        return try asJSONValue(result)
    }

    /// A budget sweep's sensitivity job: its piece of the table, keyed by the baseline file's SHA-256
    /// (the artifact address the sweep stores it under).
    static let sensitivity: ExecJobExecutor = { ctx in
        let job = try ctx.decodeSpec(SensitivityJobSpec.self)
        let spec = SensitivitySpec(job: job, inputsDir: ctx.inputsDir)
        let table = try namingUserFiles(ctx, dataOrigin: job.data.origin, modelOrigin: job.baselineOrigin ?? "the model of job \(job.baselineJob)") {
            try BudgetJobs.sensitivity(spec, baselinePath: ctx.input(JobFiles.model), baselineSHA256: try SHA256Hasher.file(ctx.input(JobFiles.model)).hash,
                                       outDir: ctx.outDir, events: progressSink(ctx))
        }
        return try asJSONValue(table)
    }

    /// A budget sweep's allocation job: the plans for one budget from the merged table.
    static let allocate: ExecJobExecutor = { ctx in
        let job = try ctx.decodeSpec(AllocationJobSpec.self)
        var spec = try AllocationSpec(job: job)
        if job.latencyProfile != nil { spec.latencyProfile = ctx.input(JobFiles.latencyProfile) }
        let result = try namingUserFiles(ctx, dataOrigin: nil, modelOrigin: job.baselineOrigin ?? "the model of job \(job.baselineJob)") {
            do {
                return try BudgetJobs.allocate(spec, baselinePath: ctx.input(JobFiles.model), baselineSHA256: try SHA256Hasher.file(ctx.input(JobFiles.model)).hash,
                                               tables: job.pieces.map(ctx.input), reusedTable: job.reusedTable != nil, outDir: ctx.outDir,
                                               events: progressSink(ctx))
            } catch let error as CompressionError {
                // A budget no plan meets, or a table from another baseline: retrying cannot help.
                throw JobInputError(job.reusedTable.map { "\($0): \(error)" } ?? error.description)
            }
        }
        return try asJSONValue(result)
    }
}
