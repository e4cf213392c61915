import Foundation
import TestSupport
import XCTest
@testable import Engine
@testable import ModelInterop

/// End-to-end: the real binary imports, compresses, evaluates and exports Keras files.
final class ModelCommandsTests: XCTestCase {
    static let binary = BuiltBinary.ranksweep

    @discardableResult
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testKerasFilesWorkWhereverAModelIsTaken() throws {
        let dir = try temporaryDirectory("model-commands")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = try run(["dataset", "synth", "--out", dir + "/data", "--count", "20", "--size", "16", "--seed", "5"])
        XCTAssertEqual(r.status, 0, r.output)

        r = try run(["import-keras", kerasFixtures + "/named.keras", "--out", dir + "/named.safetensors"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("depth 2, base filters 4, 3 input channels"), r.output)
        XCTAssertEqual(try UNet.load(path: dir + "/named.safetensors").model.config.baseFilters, 4)

        // compress takes a legacy .h5 directly (the seed's --model_path spelling), with data given.
        r = try run(["compress", "--model_path", kerasFixtures + "/named.h5", "--data_root", dir + "/data", "--method", "svd",
                     "--rank", "2", "--finetune-epochs", "0", "--out-dir", dir + "/cmp"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("| SVD | r=2 |"), r.output)
        let compressed = try UNet.load(path: dir + "/cmp/model.safetensors").model
        XCTAssertTrue(compressed.convolutions.contains { $0 is LowRankConv2D })
        // The compressed model records the data it was compressed with: it evaluates without flags.
        r = try run(["evaluate", "--model", dir + "/cmp/model.safetensors"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("test split (2 images)"), r.output)
        // Without data a Keras model has none of its own: a clear error.
        r = try run(["compress", "--model", kerasFixtures + "/named.h5", "--method", "svd", "--rank", "2", "--out-dir", dir + "/cmp2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("named.h5: a model ranksweep did not train has no data of its own"), r.output)

        // evaluate takes a 1-channel .keras: the RGB data is converted to the model's channels.
        r = try run(["evaluate", "--model", kerasFixtures + "/auto.keras", "--data-root", dir + "/data"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("test split ("), r.output)

        // export: the compressed model and a Keras file straight to ONNX.
        r = try run(["export", dir + "/cmp/model.safetensors", "--onnx", dir + "/cmp.onnx"])
        XCTAssertEqual(r.status, 0, r.output)
        let onnx = try ONNXSummary(path: dir + "/cmp.onnx")
        XCTAssertEqual(onnx.initializers.reduce(0) { $0 + $1.values.count }, compressed.parameterCount)
        r = try run(["export", kerasFixtures + "/auto.weights.h5", "--onnx", dir + "/auto.onnx"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try ONNXSummary(path: dir + "/auto.onnx").inputs.first?.dims, ["batch", "height", "width", "1"])
    }

    func testMisfitAndWrongFilesAreOneLineErrors() throws {
        let dir = try temporaryDirectory("model-commands-errors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = try run(["import-keras", kerasFixtures + "/misfit-dropout.keras", "--out", dir + "/m.safetensors"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, r.output)
        XCTAssertTrue(r.output.contains("misfit-dropout.keras: layer 'bottleneck_dropout' (Dropout"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/m.safetensors"))
        r = try run(["export", kerasFixtures + "/misfit-kernel5.h5", "--onnx", dir + "/m.onnx"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("misfit-kernel5.h5: layer 'enc0_conv1'"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/m.onnx"))
        r = try run(["import-keras", kerasFixtures + "/io.safetensors", "--out", dir + "/x.safetensors"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("io.safetensors: not a Keras model file"), r.output)
    }
}
