import Foundation
import Pipeline
import TestSupport
import XCTest

/// End-to-end: the real `ranksweep` binary, real files, exit codes and messages.
final class CLITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = BuiltBinary.ranksweep

    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-cli-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    @discardableResult
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try CLITests.runBinary(arguments) }

    /// Runs the built binary to completion: its exit status and its stdout and stderr together.
    static func runBinary(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testTrainCompressEvaluateEndToEnd() throws {
        let dir = try temporaryDirectory()
        var r = try run(["dataset", "synth", "--out", dir + "/data", "--count", "16", "--size", "32", "--seed", "3"])
        XCTAssertEqual(r.status, 0, r.output)
        // snake_case spellings of the seed pipeline are accepted.
        r = try run(["train", "--data_root", dir + "/data", "--image-size", "32", "--base-filters", "4", "--depth", "2",
                     "--epochs", "2", "--batch_size", "4", "--lr", "3e-3", "--out_dir", dir + "/base"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("test ("), r.output)
        let metrics = try OutputFiles.readJSON(TrainResult.self, from: dir + "/base/metrics.json")
        XCTAssertEqual(metrics.epochsRun, 2)
        r = try run(["compress", "--model", dir + "/base/model.safetensors", "--svd-ranks", "2,4", "--arsvd-taus", "0.9",
                     "--finetune-epochs", "1", "--out-dir", dir + "/cmp"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("| SVD | r=2 |"), r.output)
        for sub in ["svd_r2", "svd_r4", "arsvd_tau0.9"] {
            let result = try OutputFiles.readJSON(CompressResult.self, from: "\(dir)/cmp/\(sub)/result.json")
            XCTAssertEqual(result.baseline.dice, metrics.test.dice, accuracy: 1e-9, "same test split as the baseline")
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/cmp/\(sub)/layers.csv"))
        }
        // Tucker-2 by VBMF and spatial SVD by fraction, one setting each: the result names the method and setting.
        for (args, sub) in [(["--method", "tucker2", "--rank", "auto"], "t2"), (["--method", "spatial-svd", "--rank", "0.5"], "ss")] {
            r = try run(["compress", "--model", dir + "/base/model.safetensors"] + args + ["--finetune-epochs", "0", "--out-dir", dir + "/" + sub])
            XCTAssertEqual(r.status, 0, r.output)
            let result = try OutputFiles.readJSON(CompressResult.self, from: "\(dir)/\(sub)/result.json")
            XCTAssertEqual(result.summary.method.description, sub == "t2" ? "tucker2 r=auto" : "spatial-svd r=0.5")
            XCTAssertGreaterThan(result.summary.factorisedLayerCount, 0)
        }
        r = try run(["evaluate", "--model", dir + "/cmp/svd_r4/model.safetensors", "--overlays", dir + "/ov"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir + "/ov").isEmpty)
    }

    func testBadInputGivesOneLineErrorAndNonZeroExit() throws {
        let dir = try temporaryDirectory()
        let garbage = dir + "/garbage.safetensors"
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: garbage))
        var r = try run(["compress", "--model", garbage, "--method", "svd", "--rank", "0", "--out-dir", dir + "/o"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("rank must be a positive integer"), r.output)
        r = try run(["compress", "--model", garbage, "--method", "arsvd", "--tau", "1.5", "--out-dir", dir + "/o"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("1.5"), r.output)
        // Tucker-2 / spatial-SVD ranks and taus: a usage error (64) naming the value.
        for (args, expected) in [(["--method", "tucker2", "--rank", "lots"], "got 'lots'"), (["--method", "spatial-svd", "--rank", "0"], "rank must be a positive integer"),
                                 (["--method", "tucker2", "--tau", "0"], "tau must be in (0, 1]"), (["--method", "tucker2"], "needs --rank"),
                                 (["--method", "tucker3", "--rank", "2"], "unknown compression method 'tucker3'")] {
            r = try run(["compress", "--model", garbage] + args + ["--out-dir", dir + "/o"])
            XCTAssertEqual(r.status, 64, r.output)
            XCTAssertTrue(r.output.contains(expected), r.output)
        }
        r = try run(["compress", "--model", garbage, "--method", "svd", "--rank", "4", "--out-dir", dir + "/o"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("garbage.safetensors"), r.output)
        r = try run(["train", "--data-root", dir + "/nowhere", "--epochs", "1", "--out-dir", dir + "/o"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("nowhere"), r.output)
        r = try run(["train", "--image-size", "100", "--out-dir", dir + "/o"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("multiple of"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/o/model.safetensors"))
    }

    /// Ctrl-C (SIGINT) stops training cleanly: the best model so far, its history and metrics are
    /// written, metrics.json says it was interrupted, and the exit status is 130 so that
    /// `train && compress` does not carry on after a preemption.
    func testInterruptSavesTheBestModelSoFar() throws {
        let dir = try temporaryDirectory()
        var r = try run(["dataset", "synth", "--out", dir + "/data", "--count", "16", "--size", "32", "--seed", "4"])
        XCTAssertEqual(r.status, 0, r.output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.binary)
        process.arguments = ["train", "--data-root", dir + "/data", "--image-size", "32", "--base-filters", "4", "--depth", "2",
                             "--epochs", "100000", "--batch-size", "4", "--lr", "3e-3", "--patience", "100000", "--out-dir", dir + "/base"]
        let log = dir + "/train.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // Wait until at least two epochs have finished, then interrupt.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.components(separatedBy: "val loss").count > 2 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        r = (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        XCTAssertEqual(r.status, 130, "interrupted by SIGINT: 128 + 2, after saving\n" + r.output)
        let metrics = try OutputFiles.readJSON(TrainResult.self, from: dir + "/base/metrics.json")
        XCTAssertEqual(metrics.stoppedBy, .interrupted)
        XCTAssertGreaterThanOrEqual(metrics.epochsRun, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/base/model.safetensors"))
    }
}
