import Basics
import Engine
import Foundation
import Imaging
import XCTest
@testable import Pipeline

/// Checkpoints: the file holds the loop's whole state, and a run resumed from epoch k ends
/// bit-identical to one that was never interrupted (same machine, same threads).
final class CheckpointTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-checkpoint-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    static let samples = SyntheticDataset.generate(count: 20, size: 32, seed: 4)
    static let config = UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2)

    /// Augmentation on, and an LR schedule that fires (lr_patience 1): every piece of state matters.
    static var settings: TrainingSettings {
        var s = TrainingSettings()
        // A learning rate so small that validation loss improves by less than the plateau's
        // min_delta: the schedule cuts it after epoch 1 (to the floor after epoch 2).
        s.epochs = 5; s.batchSize = 4; s.learningRate = 2e-6; s.lrPatience = 1; s.patience = 5; s.seed = 9
        return s
    }

    /// Trains with checkpoints written to `dir/epoch-K`; returns the outcome and the final weights.
    func train(_ settings: TrainingSettings, dir: String?, resume: TrainingCheckpoint? = nil, notes: ((String) -> Void)? = nil) throws
        -> (outcome: TrainingOutcome, weights: [String: Tensor]) {
        let train = Array(CheckpointTests.samples[0..<16]), val = Array(CheckpointTests.samples[16...])
        // A different initialisation seed: a resumed run must take every weight from the checkpoint.
        let model = UNet(config: CheckpointTests.config, seed: resume == nil ? settings.seed : 12345)
        let trainer = Trainer(model: model, settings: settings, train: train, val: val) { event in
            if case let .note(text) = event { notes?(text) }
        }
        trainer.resumeFrom = resume
        if let dir { trainer.checkpointSink = Checkpointing(path: { "\(dir)/epoch-\($0)" }).sink() }
        let outcome = try trainer.run()
        return (outcome, model.stateDictionary)
    }

    func stripped(_ history: [EpochRecord]) -> [EpochRecord] {
        history.map { var r = $0; r.seconds = 0; return r }
    }

    func testCheckpointFileRoundTripsEveryPartOfTheState() throws {
        let dir = try temporaryDirectory()
        var captured: [TrainingCheckpoint] = []
        let train = Array(CheckpointTests.samples[0..<16]), val = Array(CheckpointTests.samples[16...])
        var settings = CheckpointTests.settings
        settings.epochs = 2
        let trainer = Trainer(model: UNet(config: CheckpointTests.config, seed: 1), settings: settings, train: train, val: val)
        trainer.checkpointSink = { c in
            captured.append(c)
            try c.write(to: "\(dir)/epoch-\(c.state.epoch)")
        }
        _ = try trainer.run()
        XCTAssertEqual(captured.map(\.state.epoch), [1, 2])
        XCTAssertEqual(captured.last?.state.finished, .epochs)
        XCTAssertNil(captured.first?.state.finished)
        for c in captured {
            let read = try TrainingCheckpoint.read(path: "\(dir)/epoch-\(c.state.epoch)")
            XCTAssertEqual(read.state, c.state)
            XCTAssertEqual(read.state.history.count, c.state.epoch)
            XCTAssertFalse(read.adamM.isEmpty)
            for (name, group, original) in [("weights", read.weights, c.weights), ("best", read.bestWeights, c.bestWeights),
                                            ("adam_m", read.adamM, c.adamM), ("adam_v", read.adamV, c.adamV)] {
                XCTAssertEqual(Set(group.keys), Set(original.keys), name)
                for (k, t) in original { XCTAssertEqual(group[k]?.storage, t.storage, "\(name)/\(k)") }
            }
        }
        // A checkpoint of an earlier ranksweep spelled the schedules' state flat: it reads as the same state.
        let state = try XCTUnwrap(captured.first?.state)
        var flat = try XCTUnwrap(JSONSerialization.jsonObject(with: TrainingCheckpoint.encoder().encode(state)) as? [String: Any])
        flat["earlyStopping"] = nil; flat["plateau"] = nil
        flat["bestLossBits"] = state.earlyStopping.bestBits; flat["bestEpoch"] = state.earlyStopping.bestEpoch
        flat["sinceBest"] = state.earlyStopping.sinceBest
        flat["plateauBestBits"] = state.plateau.bestBits; flat["sincePlateauBest"] = state.plateau.sinceBest
        let legacy = try JSONDecoder().decode(TrainingCheckpoint.State.self, from: JSONSerialization.data(withJSONObject: flat))
        XCTAssertEqual(legacy, state)
        // A truncated file is an error naming it, not a crash.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/epoch-2"))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: "\(dir)/broken"))
        XCTAssertThrowsError(try TrainingCheckpoint.read(path: "\(dir)/broken")) { error in
            XCTAssertTrue("\(error)".contains("\(dir)/broken"), "\(error)")
        }
    }

    func testResumedTrainingIsBitIdenticalToAnUninterruptedRun() throws {
        let dir = try temporaryDirectory()
        let settings = CheckpointTests.settings
        let whole = try train(settings, dir: dir)
        XCTAssertTrue(whole.outcome.finalLearningRate < Double(settings.learningRate), "the LR schedule fired: its state is tested")
        for k in [2, 4] {
            var notes: [String] = []
            let checkpoint = try TrainingCheckpoint.read(path: "\(dir)/epoch-\(k)")
            let resumed = try train(settings, dir: nil, resume: checkpoint) { notes.append($0) }
            XCTAssertTrue(notes.contains("resumed from epoch \(k)"), "\(notes)")
            XCTAssertEqual(stripped(resumed.outcome.history), stripped(whole.outcome.history), "from epoch \(k)")
            XCTAssertEqual(resumed.outcome.bestEpoch, whole.outcome.bestEpoch)
            XCTAssertEqual(resumed.outcome.bestValLoss.bitPattern, whole.outcome.bestValLoss.bitPattern)
            XCTAssertEqual(resumed.outcome.finalLearningRate, whole.outcome.finalLearningRate)
            XCTAssertEqual(resumed.outcome.stoppedBy, whole.outcome.stoppedBy)
            XCTAssertEqual(Set(resumed.weights.keys), Set(whole.weights.keys))
            for (name, t) in whole.weights {
                XCTAssertEqual(resumed.weights[name]!.storage.map(\.bitPattern), t.storage.map(\.bitPattern), "weights \(name), from epoch \(k)")
            }
        }
        // A checkpoint of other settings is refused with a reason, not silently mixed in.
        var other = settings
        other.learningRate = 1e-2
        XCTAssertThrowsError(try train(other, dir: nil, resume: try TrainingCheckpoint.read(path: "\(dir)/epoch-2"))) { error in
            XCTAssertTrue("\(error)".contains("other training settings"), "\(error)")
        }
    }

    /// TrainJob: resuming from a checkpoint writes the same model file and the same metrics.
    func testTrainJobResumedWritesTheSameModelAndMetrics() throws {
        let dir = try temporaryDirectory()
        _ = try SyntheticDataset.write(to: dir + "/data", count: 16, size: 32, seed: 2)
        var spec = TrainSpec(data: DataSource(root: dir + "/data"), imageSize: 32, model: CheckpointTests.config)
        spec.training.epochs = 3; spec.training.batchSize = 4; spec.training.learningRate = 3e-3
        let whole = try TrainJob.run(spec, outDir: dir + "/a", checkpoints: Checkpointing(path: { "\(dir)/ck-\($0)" }))
        var notes: [String] = []
        let resumed = try TrainJob.run(spec, outDir: dir + "/b", checkpoints: Checkpointing(resumeFrom: "\(dir)/ck-1")) { event in
            if case let .note(text) = event { notes.append(text) }
        }
        XCTAssertTrue(notes.contains("resumed from epoch 1"), "\(notes)")
        let ma = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/model.safetensors"))
        let mb = try Data(contentsOf: URL(fileURLWithPath: dir + "/b/model.safetensors"))
        XCTAssertEqual(ma, mb, "the model file is bit-identical")
        XCTAssertEqual(resumed.test, whole.test)
        XCTAssertEqual(resumed.testWithBatchStatistics, whole.testWithBatchStatistics)
        XCTAssertEqual(resumed.epochsRun, whole.epochsRun)
        XCTAssertEqual(resumed.bestEpoch, whole.bestEpoch)
        // history.csv holds every epoch, the ones before the resume included.
        let history = try String(contentsOfFile: dir + "/b/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.count, 1 + 3)
    }

    /// By default a compress job depends only on its inputs: run twice, it writes the same model
    /// file, and its fine-tune resumes like training, to the same model file and scores as an
    /// uninterrupted run. A checkpoint of another factorisation (another rank here; another version
    /// or profile in life) is dropped with a note: the fine-tune starts over, nothing fails.
    func testCompressJobFineTuneResumesBitIdenticalAndDropsAForeignCheckpoint() throws {
        let dir = try temporaryDirectory()
        _ = try SyntheticDataset.write(to: dir + "/data", count: 16, size: 32, seed: 2)
        var train = TrainSpec(data: DataSource(root: dir + "/data"), imageSize: 32, model: CheckpointTests.config)
        train.training.epochs = 2; train.training.batchSize = 4; train.training.learningRate = 3e-3
        _ = try TrainJob.run(train, outDir: dir + "/base")
        let baseline = dir + "/base/model.safetensors"
        func spec(rank: Int) -> CompressSpec {
            var s = CompressSpec(method: .svd(rank: rank), fineTune: FineTuneSettings(epochs: 3, learningRate: 1e-3, patience: 5))
            s.latencyRuns = 1
            return s
        }
        let whole = try CompressJob.run(spec(rank: 2), baselinePath: baseline, outDir: dir + "/a",
                                        checkpoints: Checkpointing(path: { "\(dir)/ck-\($0)" }))
        var notes: [String] = []
        let resumed = try CompressJob.run(spec(rank: 2), baselinePath: baseline, outDir: dir + "/b",
                                          checkpoints: Checkpointing(resumeFrom: "\(dir)/ck-1")) { event in
            if case let .note(text) = event { notes.append(text) }
        }
        XCTAssertTrue(notes.contains("resumed from epoch 1"), "\(notes)")
        let twice = try CompressJob.run(spec(rank: 2), baselinePath: baseline, outDir: dir + "/a2")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/a/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/a2/model.safetensors")), "run twice: the same model file")
        XCTAssertEqual(twice.candidates, whole.candidates)
        XCTAssertEqual(resumed.candidates, whole.candidates, "the resumed run scores every candidate as the whole run did")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/a/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/b/model.safetensors")), "the model file is bit-identical")
        XCTAssertEqual(resumed.afterFineTune, whole.afterFineTune)
        XCTAssertEqual(resumed.fineTuneEpochs, whole.fineTuneEpochs)

        // Rank 1 on a rank-2 checkpoint: other shapes, so the fine-tune starts over, as a fresh rank-1 run does.
        notes = []
        let foreign = try CompressJob.run(spec(rank: 1), baselinePath: baseline, outDir: dir + "/c",
                                          checkpoints: Checkpointing(resumeFrom: "\(dir)/ck-1")) { event in
            if case let .note(text) = event { notes.append(text) }
        }
        XCTAssertTrue(notes.contains { $0.contains("holds other layers than this attempt factorised") }, "\(notes)")
        XCTAssertFalse(notes.contains("resumed from epoch 1"), "\(notes)")
        let fresh = try CompressJob.run(spec(rank: 1), baselinePath: baseline, outDir: dir + "/d")
        XCTAssertEqual(foreign.afterFineTune, fresh.afterFineTune)
    }
}

/// Early stopping and the learning-rate schedule as Keras counts them.
final class TrainingScheduleTests: XCTestCase {
    func testEarlyStoppingCountsEpochsWithoutAStrictImprovement() {
        var e = EarlyStopping(patience: 2)
        XCTAssertEqual(e.record(0.5, epoch: 1), .improved)
        XCTAssertEqual(e.record(0.5, epoch: 2), .waiting, "equal is no improvement")
        XCTAssertEqual(e.record(0.4, epoch: 3), .improved)
        XCTAssertEqual(e.record(0.45, epoch: 4), .waiting)
        XCTAssertEqual(e.record(0.41, epoch: 5), .stop)
        XCTAssertEqual(e.bestEpoch, 3)
        XCTAssertEqual(e.best, 0.4)
        var fromStart = EarlyStopping(patience: 1, best: 0.3)
        XCTAssertEqual(fromStart.record(0.35, epoch: 1), .stop, "the start counts as epoch 0")
        XCTAssertEqual(fromStart.bestEpoch, 0)
    }

    func testThePlateauScheduleDropsTheRateAfterPatienceAndNotBelowTheFloor() {
        var p = PlateauSchedule(patience: 2, factor: 0.1, minimum: 1e-4, minDelta: 1e-4)
        XCTAssertNil(p.record(1.0, learningRate: 1e-2))
        XCTAssertNil(p.record(0.99995, learningRate: 1e-2), "within min_delta: no improvement, one epoch waited")
        XCTAssertEqual(p.record(1.0, learningRate: 1e-2), 1e-3)
        XCTAssertEqual(p.sinceBest, 0, "the count starts again")
        XCTAssertNil(p.record(1.0, learningRate: 1e-3))
        XCTAssertEqual(Double(p.record(1.0, learningRate: 1e-3) ?? 0), 1e-4, accuracy: 1e-9)
        XCTAssertNil(p.record(1.0, learningRate: 1e-4))
        XCTAssertNil(p.record(1.0, learningRate: 1e-4), "at the floor it stays")
        XCTAssertNil(p.record(0.5, learningRate: 1e-4))
        XCTAssertEqual(p.best, 0.5)
    }
}
