import Basics
import Compression
import Engine
import Foundation
import Imaging
import XCTest
@testable import Pipeline

final class TrainingTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-pipeline-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// A few epochs on a small synthetic set lift validation Dice well above chance (predicting
    /// every pixel as lesion scores about 2f/(1+f) for foreground fraction f, about 0.3 here).
    func testShortTrainingRaisesValidationDiceWellAboveChance() throws {
        let samples = SyntheticDataset.generate(count: 48, size: 64, seed: 11)
        let train = Array(samples[0..<40]), val = Array(samples[40...])
        var settings = TrainingSettings()
        settings.epochs = 8; settings.batchSize = 8; settings.learningRate = 3e-3; settings.seed = 3
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 8, depth: 3), seed: 3)
        let fg = val.map(\.foregroundFraction).reduce(0, +) / Double(val.count)
        let chance = 2 * fg / (1 + fg)
        let outcome = try Trainer(model: model, settings: settings, train: train, val: val).run()
        let best = outcome.history.map(\.valDice).max()!
        print("short training: validation dice \(outcome.history.map { String(format: "%.3f", $0.valDice) }), chance \(chance)")
        XCTAssertGreaterThan(best, max(0.6, chance + 0.25))
        XCTAssertLessThan(outcome.history.last!.trainLoss, outcome.history.first!.trainLoss)
    }

    /// Issue 8: few steps per epoch (14 training images, batch 4). After training and the final
    /// recalibration, inference-mode Dice must not fall below Dice with batch statistics (test
    /// batches of the training batch size) by more than 0.02, and must be well above chance.
    func testSmallDataSetKeepsInferenceModeHonest() throws {
        let samples = SyntheticDataset.generate(count: 58, size: 64, seed: 5)
        let train = Array(samples[0..<14]), val = Array(samples[14..<18]), test = Array(samples[18...])
        var settings = TrainingSettings()
        settings.epochs = 12; settings.batchSize = 4; settings.learningRate = 3e-3; settings.patience = 12; settings.seed = 2
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 8, depth: 3), seed: 2)
        _ = try Trainer(model: model, settings: settings, train: train, val: val).run()
        let before = Evaluation.evaluate(model, on: test, batchSize: test.count)
        BatchNormRecalibration.run(model: model, samples: train, batchSize: 4)
        let inference = Evaluation.evaluate(model, on: test, batchSize: 4)
        let batchStatistics = Evaluation.evaluate(model, on: test, batchSize: settings.batchSize, training: true)
        print("small data: inference dice \(inference.dice) (before recalibration \(before.dice)), batch-statistics dice \(batchStatistics.dice), momentum \(model.batchNorms[0].momentum)")
        // The failure this guards against is inference mode far *below* batch statistics (Keras:
        // 0.015 vs 0.835). Batch statistics of 4 test images are themselves noisy and here score
        // lower than the recalibrated running statistics, so the check is one-sided.
        XCTAssertGreaterThanOrEqual(inference.dice, batchStatistics.dice - 0.02)
        XCTAssertGreaterThan(inference.dice, 0.5)
        XCTAssertLessThan(model.batchNorms[0].momentum, 0.9, "momentum adapts to 4 steps per epoch")
        // Scoring with batch statistics left the running statistics alone.
        XCTAssertEqual(Evaluation.evaluate(model, on: test, batchSize: 4), inference)
    }

    /// The train job writes its three files, and the saved model reproduces the reported score.
    func testTrainJobWritesModelHistoryAndMetrics() throws {
        let dir = try temporaryDirectory()
        _ = try SyntheticDataset.write(to: dir + "/data", count: 20, size: 32, seed: 5)
        var spec = TrainSpec(data: DataSource(root: dir + "/data", splitSeed: 1), imageSize: 32,
                             model: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2))
        spec.training.epochs = 2; spec.training.batchSize = 4; spec.training.learningRate = 3e-3
        let result = try TrainJob.run(spec, outDir: dir + "/out")
        let (model, metadata) = try UNet.load(path: dir + "/out/model.safetensors")
        XCTAssertNotNil(metadata[TrainJob.specKey])
        let data = try spec.data.load(imageSize: 32, channels: 3)
        XCTAssertEqual(Evaluation.evaluate(model, on: data.test, batchSize: 4).dice, result.test.dice, accuracy: 1e-12)
        let history = try String(contentsOfFile: dir + "/out/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.first.map(String.init), EpochRecord.csvHeader.joined(separator: ","))
        XCTAssertEqual(history.count, 1 + result.epochsRun)
        let metrics = try OutputFiles.readJSON(TrainResult.self, from: dir + "/out/metrics.json")
        XCTAssertEqual(metrics.parameters, model.parameterCount)
        // The plan table: every convolution at 32x32, the data-facing first layer without dX.
        let plans = try XCTUnwrap(metrics.convolutionPlans)
        XCTAssertEqual(plans, model.convolutionPlans(height: 32, width: 32))
        XCTAssertEqual(plans.map(\.layer), model.convolutions.map(\.name))
        XCTAssertEqual(plans.first?.inputGradient, "none")
        XCTAssertEqual(plans.last?.forward, "pointwise GEMM")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/out")),
                       ["model.safetensors", "history.csv", "metrics.json"])
    }

    func testBadDataFailsBeforeTrainingNamingTheFile() throws {
        let dir = try temporaryDirectory()
        _ = try SyntheticDataset.write(to: dir + "/data", count: 12, size: 32, seed: 5)
        try FileManager.default.removeItem(atPath: dir + "/data/masks/0003.png")
        var spec = TrainSpec(data: DataSource(root: dir + "/data"), imageSize: 32, model: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2))
        spec.training.epochs = 1
        XCTAssertThrowsError(try TrainJob.run(spec, outDir: dir + "/out")) { error in
            XCTAssertTrue("\(error)".contains("0003.png"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
    }

    func testDivergenceStopsWithAnErrorNamingTheEpoch() {
        var samples = SyntheticDataset.generate(count: 8, size: 32, seed: 1)
        samples[3].image.storage[10] = .nan
        var settings = TrainingSettings()
        settings.epochs = 2; settings.batchSize = 4; settings.augment = false
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2), seed: 1)
        XCTAssertThrowsError(try Trainer(model: model, settings: settings, train: samples, val: samples).run()) { error in
            XCTAssertTrue("\(error)".contains("diverged in epoch 1"), "\(error)")
        }
    }

    func testRecalibrationSetsExactStatistics() {
        let samples = SyntheticDataset.generate(count: 6, size: 16, seed: 2)
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 1), seed: 1)
        BatchNormRecalibration.run(model: model, samples: samples, batchSize: 4)
        // The first BatchNorm sees the first convolution's output: compute its statistics directly.
        let conv = model.encoders[0].conv1
        var sum = [Double](repeating: 0, count: 2), sumSq = sum
        var n = 0
        for s in samples {
            let y = conv.forward(s.image.reshaped([1] + s.image.shape), training: true)
            for p in 0..<(y.count / 2) { for c in 0..<2 { let v = Double(y.storage[p * 2 + c]); sum[c] += v; sumSq[c] += v * v } }
            n += y.count / 2
        }
        let bn = model.encoders[0].bn1
        for c in 0..<2 {
            let mean = sum[c] / Double(n)
            XCTAssertEqual(Double(bn.movingMean.value.storage[c]), mean, accuracy: 1e-5)
            XCTAssertEqual(Double(bn.movingVariance.value.storage[c]), sumSq[c] / Double(n) - mean * mean, accuracy: 1e-5)
        }
    }

    /// With Keras's handling (momentum 0.99, no recalibration) the running statistics after a few
    /// steps are still mostly their initial values; with the default policy on a small set they are
    /// the exact statistics of the training data.
    func testKerasBatchNormHandlingIsReproducibleAndOursIsExact() throws {
        let samples = SyntheticDataset.generate(count: 16, size: 32, seed: 9)
        func runningMean(exactValidation: Bool?, momentum: Float?) throws -> (running: Float, exact: Float) {
            var settings = TrainingSettings()
            settings.epochs = 2; settings.batchSize = 4; settings.augment = false
            settings.bnMomentum = momentum; settings.exactValidation = exactValidation
            let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2), seed: 4)
            _ = try Trainer(model: model, settings: settings, train: samples, val: Array(samples.prefix(4))).run()
            let running = model.encoders[0].bn1.movingMean.value.storage[0]
            BatchNormRecalibration.run(model: model, samples: samples, batchSize: 4)
            return (running, model.encoders[0].bn1.movingMean.value.storage[0])
        }
        let keras = try runningMean(exactValidation: false, momentum: 0.99)
        // 8 steps at momentum 0.99: the initial 0 still weighs 0.99^8 = 92%.
        XCTAssertLessThan(abs(keras.running), 0.2 * abs(keras.exact))
        let ours = try runningMean(exactValidation: nil, momentum: nil)
        XCTAssertEqual(ours.running, ours.exact, accuracy: 1e-5 * max(1, abs(ours.exact)))
    }

    func testAdaptiveMomentum() {
        XCTAssertEqual(BatchNormPolicy.momentum(stepsPerEpoch: 1000, explicit: nil), 0.99)
        XCTAssertEqual(BatchNormPolicy.momentum(stepsPerEpoch: 4, explicit: nil), Float(pow(0.05, 0.25)), accuracy: 1e-6)
        XCTAssertEqual(BatchNormPolicy.momentum(stepsPerEpoch: 4, explicit: 0.9), 0.9)
    }
}
