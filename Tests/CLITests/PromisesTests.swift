import Foundation
import XCTest

/// What the README promises about bad input and quiet output, each through the real binary: one
/// clear line naming what and where, the right exit status, nothing left behind.
final class PromisesTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-promise-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try CLITests.runBinary(arguments) }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    func testSweepFileAndFlagErrorsAreClearAndLeaveNothingBehind() throws {
        let dir = try temporaryDirectory()
        let state = dir + "/state"
        func sweep(_ text: String) throws -> String {
            let path = dir + "/sweep-\(UUID()).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // A bad list value is a usage error (64), like on train and compress.
        var r = try run(["run", "--arsvd-taus", "1.5", "--state-dir", state])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--arsvd-taus") && r.output.contains("1.5"), r.output)

        // An unknown key: its line and the nearest known key.
        r = try run(["run", try sweep("synthetic: {count: 24, size: 32}\nfinetune: {epochs: 1}\n"), "--state-dir", state])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("unknown key finetune (line 2): did you mean fine_tune?"), r.output)

        // A tab in the indentation is called a tab.
        r = try run(["run", try sweep("model:\n\tdepth: 2\n"), "--state-dir", state])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("line 2 is indented with a tab"), r.output)

        // An image size the U-Net cannot pool is refused before any state exists.
        r = try run(["run", try sweep("synthetic: {count: 24, size: 32}\nimage_size: 30\nmodel: {depth: 2}\n"), "--state-dir", state])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("image_size 30 must be at least 16 and a multiple of 2^depth = 4"), r.output)
        XCTAssertFalse(exists(state), "nothing written")

        // A bind that fails leaves no state dir (an address this host does not have).
        r = try run(["coordinator", "--sweep", try sweep("noop: 2\n"), "--bind", "tcp://192.0.2.1:5555", "--insecure", "--state-dir", state])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("cannot bind tcp://192.0.2.1:5555"), r.output)
        XCTAssertFalse(exists(state), "no sweep.sqlite, artifacts or lock left behind")

        // A worker endpoint without tcp:// says what is wrong.
        r = try run(["worker", "--connect", "127.0.0.1:5555"])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("not a ZeroMQ endpoint: give tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555"), r.output)
        // Test-only options stay out of the help.
        r = try run(["worker", "--help"])
        XCTAssertFalse(r.output.contains("--fault"), r.output)
    }

    func testLateWorkerGivesUpAndSaysItWasNeverWelcomed() throws {
        // A port nothing listens on: the worker retries, then gives up instead of retrying forever.
        let port = Int.random(in: 20000 ... 32700)   // below the ephemeral range: see Harness.freePort
        let r = try run(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--heartbeat-ms", "100", "--liveness", "2", "--give-up-after", "1",
                         "--cache-dir", try temporaryDirectory()])
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.output.contains("never welcomed"), r.output)
        XCTAssertFalse(r.output.contains("key"), "no keys are in use, so none is blamed\n" + r.output)
    }

    func testModelCommandsSayWhatIsWrongAndKeepEarlierResults() throws {
        let dir = try temporaryDirectory()
        let png = dir + "/x.png"
        var r = try run(["dataset", "synth", "--out-dir", dir + "/data", "--count", "16", "--image-size", "32", "--seed", "3"])
        XCTAssertEqual(r.status, 0, r.output)
        let image = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: dir + "/data/images").first)
        try FileManager.default.copyItem(atPath: dir + "/data/images/" + image, toPath: png)
        r = try run(["evaluate", "--model", png])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("x.png: not a safetensors or Keras file"), r.output)

        r = try run(["compress", "--model", dir + "/missing.safetensors", "--method", "svd", "--rank", "2", "--out-dir", dir + "/c"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("missing.safetensors: no such file"), r.output)
        XCTAssertFalse(r.output.contains("=="), "no setting is announced before the error\n" + r.output)
        r = try run(["compress", "--model", png, "--method", "svd", "--rank", "-3", "--out-dir", dir + "/c"])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertFalse(r.output.contains("Missing value"), r.output)
        XCTAssertTrue(r.output.contains("-3"), r.output)

        // -q: results only, no epoch lines; the summary says why training stopped.
        let train = ["train", "--data-root", dir + "/data", "--image-size", "32", "--base-filters", "4", "--depth", "2", "--epochs", "2",
                     "--batch-size", "4", "--threads", "1", "--out-dir", dir + "/base"]
        r = try run(train + ["-q"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.output.contains("epoch 1/2"), r.output)
        XCTAssertTrue(r.output.contains("ran 2 epoch(s), stopped by the --epochs limit"), r.output)
        // An earlier run's model is not replaced silently.
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/base/model.safetensors"))
        r = try run(train)
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("already holds model.safetensors") && r.output.contains("--overwrite"), r.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/base/model.safetensors")), before)

        // compress keeps its comparison table, and warns when a rank compresses nothing.
        r = try run(["compress", "--model", dir + "/base/model.safetensors", "--svd-ranks", "2,1000", "--fine-tune-epochs", "0",
                     "--threads", "1", "--out-dir", dir + "/cmp", "--progress", "none"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("rank 1000 is at or above every layer's full rank"), r.output)
        let csv = try String(contentsOfFile: dir + "/cmp/comparison.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3, "header + one row per setting: \(csv)")
        XCTAssertTrue(csv[1].hasPrefix("svd,r=2,svd_r2,"), "\(csv)")
        XCTAssertTrue(try String(contentsOfFile: dir + "/cmp/comparison.md", encoding: .utf8).contains("| SVD | r=1000 |"))
    }
}
