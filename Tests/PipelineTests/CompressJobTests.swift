import Compression
import Engine
import Foundation
import Imaging
import XCTest
@testable import Pipeline

final class CompressJobTests: XCTestCase {
    /// Compressing a colour model on gray data is an error naming a file, before any work.
    func testDataWithOtherChannelsThanTheModelIsAnError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-compress-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try SyntheticDataset.write(to: dir + "/rgb", count: 10, size: 32, seed: 1)
        _ = try SyntheticDataset.write(to: dir + "/gray", count: 10, size: 32, seed: 1, channels: 1)
        var spec = TrainSpec(data: DataSource(root: dir + "/rgb"), imageSize: 32, model: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2))
        spec.training.epochs = 1; spec.training.batchSize = 4
        _ = try TrainJob.run(spec, outDir: dir + "/base")
        let compress = CompressSpec(method: .svd(rank: 1), data: DataSource(root: dir + "/gray"))
        XCTAssertThrowsError(try CompressJob.run(compress, baselinePath: dir + "/base/model.safetensors", outDir: dir + "/out")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("/gray/") && message.contains("gray") && message.contains("3 channels"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/result.json"))
        // The same data kind as the model is accepted.
        XCTAssertNoThrow(try DataSource(root: dir + "/rgb").checkChannels(matching: 3))
    }
}
