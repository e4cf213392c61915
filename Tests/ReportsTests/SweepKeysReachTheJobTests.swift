import Basics
import Foundation
import Pipeline
import Reports
import Sweep
import SweepJobs
import XCTest

/// Every key of a sweep file reaches the job that uses it unchanged: the file is parsed, planned
/// into jobs, their spec JSON decoded as a worker does, and mapped onto Pipeline's specs the way
/// `exec-job` runs them (SweepJobs/JobSpecMapping.swift). Every value differs from its default, so a
/// key dropped anywhere on the way shows up as a default.
final class SweepKeysReachTheJobTests: XCTestCase {
    func plan(_ yaml: String) throws -> (SweepSpec, [PlannedJob]) {
        let spec = try SweepSpec.parse(yaml: yaml, file: "every-key.yaml")
        let jobs = try JobGraph.plan(spec) { _, _ in ("0123abcd", 1) }
        return (spec, jobs)
    }

    func testEveryPipelineKeyReachesTheJobUnchanged() throws {
        let dir = NSTemporaryDirectory() + "keys-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/given.safetensors", contents: Data([1]))
        FileManager.default.createFile(atPath: dir + "/target.json", contents: Data("{}".utf8))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = """
            data_root: \(dir)/data
            dataset: {images_dir: scans, masks_dir: labels, mask_suffix: _gt, mask_threshold: 99, skip_unmatched: true}
            image_size: 48
            model: {base_filters: 6, depth: 2, channels: 1}
            baseline: {epochs: 7, batch_size: 5, lr: 0.00025, patience: 9, lr_patience: 2, augment: false}
            compression: {svd_ranks: [3], arsvd_taus: [0.75], latency_profile: \(dir)/target.json}
            fine_tune: {epochs: 4, lr: 0.0003, patience: 3, distill: 0.25}
            seeds: [-5, 11]
            max_attempts: 6
            job_timeout: 123.5
            validation_split: 0.2
            """
        let top = Set(yaml.split(separator: "\n").compactMap { $0.split(separator: ":").first.map(String.init) })
        XCTAssertTrue(SweepSpec.pipelineKeys.subtracting(["synthetic", "baseline_model", "target", "budget", "methods", "candidates"]).isSubset(of: top),
                      "the test sets every pipeline key (synthetic and baseline_model: the next tests; target: TargetSearchTests; budget, methods, candidates: BudgetPlanTests)")
        let (sweep, jobs) = try plan(yaml)
        XCTAssertEqual(sweep.maxAttempts, 6)
        XCTAssertEqual(sweep.jobTimeout, 123.5)

        let trains = try jobs.filter { $0.kind == "train" }.map { try JSONDecoder().decode(TrainJobSpec.self, from: Data($0.spec.utf8)) }
        XCTAssertEqual(trains.map(\.seed), [-5, 11])
        let inputs = dir + "/inputs"
        for job in trains {
            let t = TrainSpec(job: job, inputsDir: inputs)
            XCTAssertEqual(t.imageSize, 48)
            XCTAssertEqual([t.model.baseFilters, t.model.depth, t.model.inputChannels], [6, 2, 1])
            XCTAssertEqual([t.training.epochs, t.training.batchSize, t.training.patience, t.training.lrPatience], [7, 5, 9, 2])
            XCTAssertEqual(t.training.learningRate, Float(0.00025))
            XCTAssertFalse(t.training.augment)
            XCTAssertEqual(t.training.seed, UInt64(truncatingIfNeeded: job.seed))
            XCTAssertEqual(t.data.splitSeed, UInt64(truncatingIfNeeded: job.seed))
            XCTAssertEqual(t.data.validationFraction, 0.2)
            XCTAssertEqual(t.data.root, inputs + "/" + JobFiles.dataset)
            XCTAssertEqual(t.data.datasetOptions, DatasetOptions(imagesDir: "scans", masksDir: "labels", maskSuffix: "_gt",
                                                                 maskThreshold: 99, skipUnmatched: true))
        }
        for job in jobs where job.kind == "compress" {
            XCTAssertEqual(job.inputs.filter { $0.name == JobFiles.latencyProfile }.count, 1, "the profile travels to every compress job")
        }
        let compresses = try jobs.filter { $0.kind == "compress" }.map { try JSONDecoder().decode(CompressJobSpec.self, from: Data($0.spec.utf8)) }
        XCTAssertEqual(compresses.map { "\($0.method)-\($0.rank.map(String.init) ?? "")\($0.tau.map { String($0) } ?? "")" },
                       ["svd-3", "arsvd-0.75", "svd-3", "arsvd-0.75"])
        for job in compresses {
            let c = try CompressSpec(job: job, inputsDir: inputs)
            XCTAssertEqual(c.fineTune.epochs, 4)
            XCTAssertEqual(c.fineTune.learningRate, Float(0.0003))
            XCTAssertEqual(c.fineTune.patience, 3)
            XCTAssertEqual(c.batchSize, 5, "baseline.batch_size sets the compress job's batches too")
            XCTAssertEqual(c.fineTune.distill, 0.25)
            XCTAssertEqual(c.latencyProfile, inputs + "/" + JobFiles.latencyProfile, "compression.latency_profile reaches the compress job as its input")
            XCTAssertEqual(job.latencyProfile, dir + "/target.json")
            XCTAssertEqual(c.data?.validationFraction, 0.2)
            XCTAssertEqual(c.data?.datasetOptions?.maskThreshold, 99)
            XCTAssertEqual(job.imageSize, 48)
        }

        // baseline_model: compress jobs take the given file; no train job.
        let (_, given) = try plan(yaml + "\nbaseline_model: \(dir)/given.safetensors\n")
        XCTAssertFalse(given.contains { $0.kind == "train" })
        let g = try JSONDecoder().decode(CompressJobSpec.self, from: Data(given.first { $0.kind == "compress" }!.spec.utf8))
        XCTAssertEqual(g.baselineOrigin, dir + "/given.safetensors")
    }

    func testSyntheticKeysReachTheJobUnchanged() throws {
        let (_, jobs) = try plan("synthetic: {count: 12, size: 40, seed: 5}\nseeds: [3]\n")
        let job = try JSONDecoder().decode(TrainJobSpec.self, from: Data(jobs[0].spec.utf8))
        let t = TrainSpec(job: job, inputsDir: "/nowhere")
        XCTAssertNil(t.data.root)
        XCTAssertEqual(t.data.syntheticCount, 12)
        XCTAssertEqual(t.data.syntheticSeed, 5)
        XCTAssertEqual(job.data.synthetic?.size, 40)
        // Absent keys take the defaults of the types they set, nothing else.
        XCTAssertEqual(t.training, { var d = TrainingSettings(); d.seed = 3; return d }())
        let c = try CompressSpec(job: try JSONDecoder().decode(CompressJobSpec.self, from: Data(jobs[1].spec.utf8)), inputsDir: "/nowhere")
        XCTAssertEqual(c.fineTune, FineTuneSettings())
        XCTAssertNil(c.latencyProfile, "without a profile every eligible layer is factorised")
        XCTAssertFalse(jobs[1].spec.contains("latencyProfile") || jobs[1].spec.contains("distill"),
                       "absent keys add nothing to the job spec (plans of older state dirs match)")
        XCTAssertFalse(jobs[1].inputs.contains { $0.name == JobFiles.latencyProfile })
    }

    /// A list at every grid axis: each value reaches the jobs unchanged, every combination is
    /// planned once, and the job ids name the values.
    func testEveryAxisValueReachesItsJobsUnchanged() throws {
        let (_, jobs) = try plan("""
            synthetic: {count: 12, size: 40, seed: 5}
            image_size: [32, 48]
            model: {base_filters: [3, 5], depth: [1, 2], channels: 1}
            baseline: {epochs: [2, 3], batch_size: [4, 6], lr: [0.0025, 0.0005], augment: [true, false]}
            compression: {svd_ranks: [3], arsvd_taus: []}
            fine_tune: {epochs: [1, 2], lr: [0.0007, 0.0009]}
            seeds: [7, 8]
            """)
        struct Baseline: Hashable { var size, bf, depth, epochs, batch: Int; var lr: Float; var augment: Bool; var seed: Int }
        var baselines = Set<Baseline>()
        for job in jobs where job.kind == "train" {
            let spec = try JSONDecoder().decode(TrainJobSpec.self, from: Data(job.spec.utf8))
            let t = TrainSpec(job: spec, inputsDir: "/nowhere")
            let b = Baseline(size: t.imageSize, bf: t.model.baseFilters, depth: t.model.depth, epochs: t.training.epochs,
                             batch: t.training.batchSize, lr: t.training.learningRate, augment: t.training.augment, seed: spec.seed)
            XCTAssertTrue(baselines.insert(b).inserted, "\(job.id) is planned once")
            XCTAssertEqual(job.id, "train-is\(b.size)-bf\(b.bf)-d\(b.depth)-lr\(b.lr)-ep\(b.epochs)-bs\(b.batch)-\(b.augment ? "aug" : "noaug")-s\(b.seed)")
            XCTAssertEqual(t.model.inputChannels, 1)
        }
        XCTAssertEqual(baselines.count, 256, "2 values at each of 7 baseline axes x 2 seeds")
        XCTAssertEqual(Set(baselines.map(\.lr)), [Float(0.0025), Float(0.0005)])
        var fineTunes = Set<String>()
        let compresses = jobs.filter { $0.kind == "compress" }
        XCTAssertEqual(compresses.count, 256 * 4)
        for job in compresses {
            let spec = try JSONDecoder().decode(CompressJobSpec.self, from: Data(job.spec.utf8))
            let c = try CompressSpec(job: spec, inputsDir: "/nowhere")
            let base = try JSONDecoder().decode(TrainJobSpec.self, from: Data(jobs.first { $0.id == spec.baselineJob }!.spec.utf8))
            XCTAssertEqual(c.batchSize, base.training.batchSize)
            XCTAssertEqual(spec.imageSize, base.imageSize)
            XCTAssertEqual(spec.model, base.model)
            XCTAssertEqual(c.fineTune.patience, FineTuneSettings().patience)
            XCTAssertTrue(job.id.hasSuffix("-ftlr\(c.fineTune.learningRate)-ftep\(c.fineTune.epochs)-s\(spec.seed)"), job.id)
            fineTunes.insert("\(c.fineTune.learningRate)/\(c.fineTune.epochs)")
        }
        XCTAssertEqual(fineTunes, ["0.0007/1", "0.0007/2", "0.0009/1", "0.0009/2"])
    }
}
