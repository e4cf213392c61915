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
