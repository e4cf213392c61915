import Compression
import Engine
import Foundation
import Imaging
import Pipeline

/// The `train` and `compress` job kinds: the sweep's job specs mapped onto Pipeline's jobs, run in
/// the worker's child process (`ranksweep exec-job`). Each returns Pipeline's own result
/// (`metrics.json` / `result.json` shape) as the job's result object; the files the job writes
/// (model, history, per-layer table) travel back to the coordinator as artifacts.
public enum PipelineExecutors {
    public static let all: [String: ExecJobExecutor] = ["train": train, "compress": compress]

    /// Same data and split on every host: synthetic sets are regenerated from their seed, folders
    /// arrive as the `dataset` input; the split seed is the job's seed for train and compress alike.
    static func dataSource(_ data: DataSpec, seed: Int, validationSplit: Double, ctx: ExecJobContext) -> DataSource {
        var source = DataSource(splitSeed: UInt64(seed), validationFraction: validationSplit, testFraction: 0.1)
        if let dir = data.datasetDir {
            source.root = ctx.input(dir)
            source.datasetOptions = data.datasetOptions
        } else if let synthetic = data.synthetic {
            source.syntheticCount = synthetic.count
            source.syntheticSeed = UInt64(synthetic.seed)
        }
        return source
    }

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

    static func asJSONValue<T: Encodable>(_ value: T) throws -> [String: JSONValue] {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try JSONDecoder().decode([String: JSONValue].self, from: encoder.encode(value))
    }

    static let train: ExecJobExecutor = { ctx in
        let job = try ctx.decodeSpec(TrainJobSpec.self)
        var settings = TrainingSettings()
        settings.epochs = job.training.epochs
        settings.batchSize = job.training.batchSize
        settings.learningRate = Float(job.training.lr)
        settings.patience = job.training.patience
        settings.lrPatience = job.training.lrPatience
        settings.augment = job.training.augment
        settings.seed = UInt64(job.seed)
        let spec = TrainSpec(data: dataSource(job.data, seed: job.seed, validationSplit: job.validationSplit, ctx: ctx),
                             imageSize: job.imageSize,
                             model: UNetConfig(inputChannels: job.model.channels, baseFilters: job.model.baseFilters, depth: job.model.depth),
                             training: settings)
        let result = try namingUserFiles(ctx, dataOrigin: job.data.origin, modelOrigin: nil) {
            try TrainJob.run(spec, outDir: ctx.outDir, events: progressSink(ctx))
        }
        return try asJSONValue(result)
    }

    static let compress: ExecJobExecutor = { ctx in
        let job = try ctx.decodeSpec(CompressJobSpec.self)
        let method = try CompressionMethod(name: job.method, rank: job.rank, tau: job.tau)
        var spec = CompressSpec(method: method,
                                data: dataSource(job.data, seed: job.seed, validationSplit: job.validationSplit, ctx: ctx))
        spec.fineTune.epochs = job.fineTune.epochs
        spec.fineTune.learningRate = Float(job.fineTune.lr)
        let result = try namingUserFiles(ctx, dataOrigin: job.data.origin, modelOrigin: job.baselineOrigin ?? "the model of job \(job.baselineJob)") {
            try CompressJob.run(spec, baselinePath: ctx.input(JobFiles.model), outDir: ctx.outDir, events: progressSink(ctx))
        }
        return try asJSONValue(result)
    }
}
