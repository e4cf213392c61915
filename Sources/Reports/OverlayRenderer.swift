import Engine
import Foundation
import Imaging
import ModelInterop
import Pipeline
import Sweep
import SweepJobs

/// One overlay picture written to `overlays/`.
public struct OverlayImage: Codable, Sendable {
    /// File name under `overlays/`.
    public var file: String
    /// The test image it shows (file stem in the dataset).
    public var sample: String
    /// Panel titles, left to right (the PNG has no text).
    public var panels: [String]
    public var width: Int
    public var height: Int
}

/// Side-by-side PNGs for a few fixed test images of the first finished baseline: the input, the
/// ground truth, the baseline's prediction, and the predictions of the best (highest Dice after
/// fine-tuning) and the smallest (largest parameter reduction) compressed models of that baseline.
/// Each prediction's boundary is drawn over the image in its own colour (Imaging.Overlay).
public struct OverlayRenderer {
    /// How many test images (the first of the baseline's test split, which is fixed by its seed).
    public var imageCount = 3
    /// The dataset folder for a sweep over folder data (nil: unpack the dataset artifact from the state dir).
    public var dataRoot: String?

    public init(imageCount: Int = 3, dataRoot: String? = nil) { self.imageCount = imageCount; self.dataRoot = dataRoot }

    /// The models shown, in panel order after the input and the truth.
    struct Pick { var label: String; var modelHash: String }

    /// Writes the PNGs into `dir`; returns what it wrote (empty when no baseline has finished).
    public func render(_ results: SweepResults, into dir: String) throws -> [OverlayImage] {
        guard let (spec, picks) = choose(results) else { return [] }
        let loaded = try picks.map { pick -> (String, UNet) in
            let path = results.artifactPath(pick.modelHash)
            guard FileManager.default.fileExists(atPath: path) else {
                throw ReportError("model of \(pick.label) missing from the artifact store (\(path))")
            }
            return (pick.label, try ModelFile.load(path: path).model)   // a given baseline may be a Keras file
        }
        var cleanup: String? = nil
        defer { if let cleanup { try? FileManager.default.removeItem(atPath: cleanup) } }
        var datasetRoot: String? = nil
        if let dataset = spec.data.datasetDir {
            if let dataRoot {
                datasetRoot = dataRoot
            } else if let hash = spec.datasetHash {
                let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ranksweep-report-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
                try DirectoryArchive.unpack(archive: results.artifactPath(hash), to: tmp)
                cleanup = tmp
                datasetRoot = tmp
            } else {
                throw ReportError("the sweep's dataset (\(dataset)) is not in the state dir: pass --data-root")
            }
        }
        let source = DataSource(job: spec.data, seed: spec.seed, validationSplit: spec.validationSplit, datasetRoot: datasetRoot)
        // The data goes in as the baseline's training fed it (gray or RGB), whatever the spec says.
        let data = try source.load(imageSize: spec.imageSize, channels: loaded.first?.1.config.inputChannels ?? spec.channels)
        let samples = Array(data.test.prefix(imageCount))
        let predictions = loaded.map { Evaluation.predict($0.1, samples, batchSize: max(1, samples.count)) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var out: [OverlayImage] = []
        for (i, sample) in samples.enumerated() {
            let file = "test-\(i + 1)-\(sample.name).png"
            let picture = Overlay.sideBySide(image: sample.image, truth: sample.mask,
                                             predictions: loaded.indices.map { (loaded[$0].0, predictions[$0][i]) })
            try PNGCodec.write(picture, to: dir + "/" + file)
            out.append(OverlayImage(file: file, sample: sample.name, panels: ["input", "ground truth"] + loaded.map(\.0),
                                    width: picture.shape[1], height: picture.shape[0]))
        }
        return out
    }

    /// What the overlays need to know about the data: from the baseline's train spec, or, for a
    /// given baseline model, from a compress job's spec.
    struct DataChoice {
        var seed: Int
        var validationSplit: Double
        var imageSize: Int
        var channels: Int
        var data: DataSpec
        var datasetHash: String?
    }

    func choose(_ results: SweepResults) -> (DataChoice, [Pick])? {
        let compress = results.compressJobs.filter { $0.compressResult != nil }
        // The first finished baseline: a train job, or the given model a compress job received.
        var data: DataChoice
        var baselineHash: String
        var mine: [JobRecord]
        if let train = results.trainJobs.first(where: { $0.trainResult != nil && $0.artifacts[JobFiles.model] != nil }),
           let spec = train.trainSpec {
            data = DataChoice(seed: spec.seed, validationSplit: spec.validationSplit, imageSize: spec.imageSize,
                              channels: spec.model.channels, data: spec.data, datasetHash: train.inputArtifacts[JobFiles.dataset])
            baselineHash = train.artifacts[JobFiles.model]!
            mine = compress.filter { $0.compressSpec?.baselineJob == train.id }
        } else if let first = compress.first(where: { $0.inputArtifacts[JobFiles.model] != nil }), let spec = first.compressSpec {
            data = DataChoice(seed: spec.seed, validationSplit: spec.validationSplit, imageSize: spec.imageSize,
                              channels: spec.model.channels, data: spec.data, datasetHash: first.inputArtifacts[JobFiles.dataset])
            baselineHash = first.inputArtifacts[JobFiles.model]!
            mine = compress.filter { $0.compressSpec?.baselineJob == spec.baselineJob && $0.seed == spec.seed }
        } else {
            return nil
        }
        var picks = [Pick(label: "baseline", modelHash: baselineHash)]
        func label(_ job: JobRecord) -> String {
            let s = job.compressSpec
            if s?.method == "allocated" {
                return (job.id.hasPrefix("uniform-svd-") ? "UNIFORM-SVD " : "BUDGET ") + (job.compressResult?.method.setting ?? s?.plan ?? "") + " (\(job.id))"
            }
            // The job id too: in a grid sweep it names the axes (svd-r2-bf4-ftlr0.0001-s1).
            return "\((s?.method ?? "?").uppercased()) " + (s?.rank.map { "r=\($0)" } ?? s?.rankText.map { "r=\($0)" } ?? s?.tau.map { "tau=\(ResultsTable.number($0))" } ?? "")
                + " (\(job.id))"
        }
        let withModel = mine.filter { $0.artifacts[JobFiles.model] != nil }
        let best = withModel.max { ($0.compressResult!.afterFineTune.dice) < ($1.compressResult!.afterFineTune.dice) }
        let smallest = withModel.max {
            ($0.compressResult!.summary.parameterReductionPercent, $0.compressResult!.afterFineTune.dice)
                < ($1.compressResult!.summary.parameterReductionPercent, $1.compressResult!.afterFineTune.dice)
        }
        if let best { picks.append(Pick(label: "best Dice: " + label(best), modelHash: best.artifacts[JobFiles.model]!)) }
        if let smallest, smallest.id != best?.id {
            picks.append(Pick(label: "smallest: " + label(smallest), modelHash: smallest.artifacts[JobFiles.model]!))
        } else if let best {
            picks[picks.count - 1].label = "best and smallest: " + label(best)
        }
        data.imageSize = max(data.imageSize, 1)
        return (data, picks)
    }
}
