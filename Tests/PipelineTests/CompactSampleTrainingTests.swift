import Basics
import Engine
import Foundation
import Imaging
import XCTest
@testable import Pipeline

/// Compact (8-bit) samples must train the same model, bit for bit, as the Float32 samples the
/// decoders produce: the same data, the same settings, the same bytes of weights.
final class CompactSampleTrainingTests: XCTestCase {
    func testCompactSamplesTrainTheSameModelBytesAsFloatSamples() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-compact-\(UUID())").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try SyntheticDataset.write(to: dir + "/data", count: 24, size: 32, seed: 7)
        let loaded = try DatasetLoader.load(root: dir + "/data", size: 32, channels: 3)
        let compact = loaded.train + loaded.val
        XCTAssertTrue(compact.allSatisfy { $0.imagePixels.isCompact && $0.maskPixels.isCompact })
        XCTAssertEqual(compact[0].storedBytes, 32 * 32 * 4, "3 bytes of image and 1 of mask per pixel")

        // Today's samples: the decoder's Float32 tensors, straight from the files.
        let floats = try compact.map { s -> SegmentationSample in
            let image = try PNGCodec.readImage(path: "\(dir)/data/images/\(s.name).png", channels: 3)
            let mask = try PNGCodec.readMask(path: "\(dir)/data/masks/\(s.name).png").mask
            return SegmentationSample(name: s.name, imagePixels: .floats(image), maskPixels: .floats(mask))
        }
        XCTAssertFalse(floats[0].imagePixels.isCompact)
        let (x8, y8) = Batching.batch(compact, [3, 0, 5])
        let (x32, y32) = Batching.batch(floats, [3, 0, 5])
        XCTAssertEqual(x8.storage.map(\.bitPattern), x32.storage.map(\.bitPattern))
        XCTAssertEqual(y8.storage.map(\.bitPattern), y32.storage.map(\.bitPattern))

        func train(_ samples: [SegmentationSample]) throws -> Data {
            var settings = TrainingSettings()
            settings.epochs = 2; settings.batchSize = 4; settings.seed = 9; settings.augment = true
            let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2), seed: 4)
            _ = try Trainer(model: model, settings: settings, train: Array(samples[0..<20]), val: Array(samples[20...])).run()
            let path = dir + "/model-\(UUID()).safetensors"
            try model.save(to: path)
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        let a = try train(compact), b = try train(floats)
        XCTAssertEqual(a, b, "compact samples trained different weights")
        // The comparison can fail: a one-level change of one pixel changes the model.
        var nudged = compact
        var image = nudged[0].image
        image.storage[0] = image.storage[0] < 0.5 ? image.storage[0] + 1 / 255 : image.storage[0] - 1 / 255
        nudged[0].image = image
        XCTAssertNotEqual(try train(nudged), a)
    }
}
