import Basics
import Compression
import Engine
import Foundation
import Imaging
import XCTest
@testable import Pipeline

final class CompressJobTests: XCTestCase {
    /// Data is converted to the model's channels exactly as in training: gray data works with a
    /// colour model and the reverse; training records the data's own kind in the model.
    func testDataOfTheOtherKindIsConvertedAndTheConversionRecorded() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-compress-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try SyntheticDataset.write(to: dir + "/rgb", count: 10, size: 32, seed: 1)
        _ = try SyntheticDataset.write(to: dir + "/gray", count: 10, size: 32, seed: 1, channels: 1)
        XCTAssertEqual(try DataSource(root: dir + "/gray").storedChannels(), 1)
        XCTAssertEqual(try DataSource(root: dir + "/rgb").storedChannels(), 3)
        var spec = TrainSpec(data: DataSource(root: dir + "/gray"), imageSize: 32, model: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2))
        spec.training.epochs = 1; spec.training.batchSize = 4
        _ = try TrainJob.run(spec, outDir: dir + "/base")
        let (_, metadata) = try UNet.load(path: dir + "/base/model.safetensors")
        let recorded = try JSONDecoder().decode(TrainSpec.self, from: Data(metadata[TrainJob.specKey]!.utf8))
        XCTAssertEqual(recorded.sourceChannels, 1)
        XCTAssertEqual(recorded.conversion, "gray images repeated into RGB")
        var compress = CompressSpec(method: .svd(rank: 1), data: DataSource(root: dir + "/gray"))
        compress.fineTune.epochs = 0
        let r = try CompressJob.run(compress, baselinePath: dir + "/base/model.safetensors", outDir: dir + "/out")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/result.json"))
        XCTAssertGreaterThan(r.baseline.images, 0)
    }

    /// A model whose input cannot be fed from images (here 2 channels) is refused when it loads,
    /// naming the model file and saying what to do.
    func testModelWithUnconvertibleChannelsIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-compress-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = TrainSpec(imageSize: 32, model: UNetConfig(inputChannels: 1, baseFilters: 2, depth: 2))
        try FileManager.default.createDirectory(atPath: dir + "/base", withIntermediateDirectories: true)
        let path = dir + "/base/model.safetensors"
        try UNet(config: spec.model, seed: 1).save(to: path, metadata: [TrainJob.specKey: String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)])
        var (tensors, metadata) = try SafeTensors.read(path: path)
        metadata[UNet.architectureKey] = metadata[UNet.architectureKey]!.replacingOccurrences(of: "\"inputChannels\":1", with: "\"inputChannels\":2")
        try SafeTensors.write(tensors, metadata: metadata, to: path)
        tensors = [:]
        XCTAssertThrowsError(try CompressJob.run(CompressSpec(method: .svd(rank: 1)), baselinePath: path, outDir: dir + "/out")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(path + ": ") && message.contains("got 2") && message.contains("--channels"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
    }
}

/// The chooser: a compression job hands back the best model it made on the validation split, says
/// which, and scores every candidate on the test split too.
final class CompressChooserTests: XCTestCase {
    static func baseline(in dir: String) throws -> String {
        _ = try SyntheticDataset.write(to: dir + "/data", count: 20, size: 32, seed: 4)
        var train = TrainSpec(data: DataSource(root: dir + "/data"), imageSize: 32, model: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2))
        train.training.epochs = 3; train.training.batchSize = 4; train.training.learningRate = 3e-3
        _ = try TrainJob.run(train, outDir: dir + "/base")
        return dir + "/base/model.safetensors"
    }

    /// Every candidate is listed in order with its validation and test Dice; the chosen one has the
    /// highest validation Dice (the earliest on a tie), is never below the factorised model's, and
    /// is the model saved: its test score is what the job reports and the file scores.
    func testTheChosenModelIsTheBestOnValidationAndIsTheOneSaved() throws {
        let dir = NSTemporaryDirectory() + "rs-chooser-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let baseline = try Self.baseline(in: dir)
        // A learning rate so high that fine-tuning can make things worse: the chooser must not follow it.
        for (name, lr) in [("gentle", Float(1e-4)), ("harsh", Float(3e-2))] {
            var spec = CompressSpec(method: .svd(rank: 1), fineTune: FineTuneSettings(epochs: 3, learningRate: lr, patience: 3))
            spec.latencyRuns = 1
            let r = try CompressJob.run(spec, baselinePath: baseline, outDir: dir + "/" + name)
            let candidates = try XCTUnwrap(r.candidates)
            XCTAssertEqual(candidates.prefix(2).map(\.name), ["factorised", "recalibrated"], name)
            XCTAssertEqual(Array(candidates.map(\.name).filter { $0.hasPrefix("fine-tune epoch") }.prefix(r.fineTuneEpochs)),
                           (1...r.fineTuneEpochs).map { "fine-tune epoch \($0)" }, name)
            XCTAssertTrue(candidates.allSatisfy { $0.testDice != nil && $0.valDice.isFinite }, name)
            let best = candidates.map(\.valDice).max()!
            let chosen = try XCTUnwrap(candidates.first { $0.name == r.chosen }, name)
            XCTAssertEqual(chosen.valDice, best, "\(name): the chosen candidate has the best validation Dice")
            XCTAssertEqual(candidates.first { $0.valDice == best }?.name, r.chosen, "\(name): the earliest of equals")
            XCTAssertGreaterThanOrEqual(chosen.valDice, candidates[0].valDice, name)
            XCTAssertEqual(r.final?.dice, chosen.testDice, name)
            XCTAssertEqual(r.diceRecoveryPercent, 100 * chosen.testDice! / r.baseline.dice, accuracy: 1e-9)
            // The file holds the chosen model.
            let (saved, metadata) = try UNet.load(path: dir + "/\(name)/model.safetensors")
            XCTAssertEqual(metadata["ranksweep.chosen"], r.chosen)
            let data = try DataSource(root: dir + "/data").load(imageSize: 32, channels: 3)
            XCTAssertEqual(Evaluation.evaluate(saved, on: data.test, batchSize: 4).dice, r.final?.dice)
            // candidates.csv lists them all and marks the chosen one.
            let csv = try String(contentsOfFile: dir + "/\(name)/candidates.csv", encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(csv.count, 1 + candidates.count)
            XCTAssertEqual(csv.filter { $0.hasSuffix(",yes") }.count, 1)
            XCTAssertTrue(csv.contains { $0.hasPrefix("\(r.chosen!),") && $0.hasSuffix(",yes") })
        }
    }

    /// Early stopping counts the start as epoch 0: when no epoch beats it on validation Dice the
    /// run ends with the weights it started from, and distillation mixes the teacher's
    /// probabilities into the targets exactly as documented.
    func testFineTuningThatNeverImprovesEndsWhereItStarted() throws {
        let dir = NSTemporaryDirectory() + "rs-chooser0-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let baseline = try Self.baseline(in: dir)
        let (model, _) = try UNet.load(path: baseline)
        let data = try DataSource(root: dir + "/data").load(imageSize: 32, channels: 3)
        var settings = TrainingSettings(epochs: 2, batchSize: 4, learningRate: 0.5, patience: 5, lrPatience: 9)
        settings.recalibrateBatchNorm = false
        let start = model.parameters.map(\.value)
        let trainer = Trainer(model: model, settings: settings, train: data.train, val: data.val)
        trainer.monitor = .validationDice
        // A start no epoch can beat: Dice 1.
        var perfect = Evaluation.evaluate(model, on: data.val, batchSize: 4)
        perfect.dice = 1
        trainer.startingScore = perfect
        let outcome = try trainer.run()
        XCTAssertEqual(outcome.bestEpoch, 0)
        XCTAssertEqual(outcome.history.count, 2, "it trained, and went back")
        XCTAssertEqual(model.parameters.map(\.value), start, "the start's weights, BatchNorm statistics included")

        let y = Tensor(shape: [1, 1, 2, 1], storage: [0, 1]), q = Tensor(shape: [1, 1, 2, 1], storage: [0.5, 0.25])
        XCTAssertEqual(Trainer.distilledTargets(y, teacher: q, weight: 0.25).storage, [0.125, 0.8125])
    }
}
