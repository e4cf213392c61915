import Basics
import Foundation
import Pipeline

/// Which models a report puts in `report/models/`.
public enum ReportModelChoice: String, Sendable, CaseIterable {
    /// The recommended setting's and the Pareto front's compressed models, and their baselines.
    case chosen
    /// Every finished job's model.
    case all
    case none
}

/// A sweep's models under readable names: `report/models/JOB.safetensors`, hard links to the
/// state dir's content-addressed artifacts (copies across file systems), so the recommended model
/// is one path away. Rows learn both paths (`ResultRow.model`, `ResultRow.modelArtifact`).
public enum ReportModels {
    public static let folder = "models"
    /// The output name every train and compress job gives its model.
    static let outputName = TrainJob.modelFile

    /// The artifact of a job's model in the state dir (nil: the job has none yet).
    public static func artifact(of job: JobRecord, in results: SweepResults) -> String? {
        job.artifacts[outputName].map(results.artifactPath)
    }

    /// A sweep job's model file in `stateDir` (`ranksweep export --state-dir D --job ID`); the
    /// error says which jobs there are, or why this one has no model.
    public static func model(ofJob job: String, stateDir dir: String) throws -> String {
        let results = try SweepResults.load(stateDir: dir)
        guard let record = results.jobs.first(where: { $0.id == job }) else {
            let names = results.jobs.filter { $0.kind == "train" || $0.kind == "compress" }.map(\.id)
            throw JobModelProblem(description: "\(dir) has no job \(job)" + (names.isEmpty ? "" : "; its jobs: " + names.prefix(12).joined(separator: ", ") + (names.count > 12 ? ", …" : "")))
        }
        guard let artifact = artifact(of: record, in: results) else {
            throw JobModelProblem(description: "job \(job) in \(dir) has no model: it is \(record.status.rawValue)" + (record.kind == "train" || record.kind == "compress" ? "" : " and of kind \(record.kind)"))
        }
        return artifact
    }

    /// A job asked for by a user that has no model (a usage error).
    public struct JobModelProblem: Error, CustomStringConvertible {
        public let description: String
    }

    /// Job ids whose models the report keeps under `choice`.
    static func chosen(_ choice: ReportModelChoice, rows: [ResultRow], recommendation: Recommendation) -> Set<String> {
        let done = rows.filter { $0.status == "done" }
        switch choice {
        case .none: return []
        case .all: return Set(done.map(\.job))
        case .chosen:
            let settings = recommendation.settings
            let front = Pareto.front(settings.map { ($0.parameterReductionPercent, $0.dice) }).map { settings[$0].label }
            var labels = Set(front)
            if let r = recommendation.recommended { labels.insert(r.label) }
            let compressed = done.filter { $0.kind == "compress" && labels.contains($0.label) }
            let baselines = Set(compressed.compactMap(\.baselineJob))
            return Set(compressed.map(\.job)).union(done.filter { $0.kind == "train" && baselines.contains($0.job) }.map(\.job))
        }
    }

    /// Links (or copies) the chosen models into `reportDir/models/` and fills in each row's model paths.
    static func write(_ choice: ReportModelChoice, rows: inout [ResultRow], results: SweepResults,
                      recommendation: Recommendation, into reportDir: String) throws {
        let artifacts = Dictionary(results.jobs.compactMap { job in artifact(of: job, in: results).map { (job.id, $0) } },
                                   uniquingKeysWith: { a, _ in a })
        let keep = chosen(choice, rows: rows, recommendation: recommendation)
        let fm = FileManager.default
        if !keep.isEmpty { try AtomicFile.makeDirectory(reportDir + "/" + folder) }
        for i in rows.indices {
            guard let source = artifacts[rows[i].job] else { continue }
            rows[i].modelArtifact = source
            guard keep.contains(rows[i].job), fm.fileExists(atPath: source) else { continue }
            let name = folder + "/" + rows[i].job + ".safetensors"
            let target = reportDir + "/" + name
            do {
                do { try fm.linkItem(atPath: source, toPath: target) } catch { try fm.copyItem(atPath: source, toPath: target) }
            } catch {
                throw ReportError("cannot put \(rows[i].job)'s model at \(target): \(error.localizedDescription)")
            }
            rows[i].model = name
        }
    }
}
