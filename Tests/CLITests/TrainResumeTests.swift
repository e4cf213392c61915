import Foundation
import Pipeline
import XCTest

/// `ranksweep train` on a preempted single host: it writes OUT/checkpoint after every epoch, and
/// `--resume` continues from it to the same model an uninterrupted run writes.
final class TrainResumeTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try CLITests.runBinary(arguments) }

    func testTrainResumeAfterSIGKILLWritesTheSameModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-resume-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = try run(["dataset", "synth", "--out", dir + "/data", "--count", "48", "--size", "32", "--seed", "3"])
        XCTAssertEqual(r.status, 0, r.output)
        let epochs = 6
        func train(_ out: String, _ extra: [String] = []) -> [String] {
            ["train", "--data-root", dir + "/data", "--image-size", "32", "--base-filters", "4", "--depth", "2", "--threads", "1",
             "--epochs", "\(epochs)", "--batch-size", "4", "--lr", "3e-3", "--lr-patience", "2", "--out-dir", out] + extra
        }
        r = try run(train(dir + "/whole"))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/whole/" + TrainingCheckpoint.fileName))

        // Preempted hard (SIGKILL) as soon as a checkpoint exists.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.binary)
        process.arguments = train(dir + "/cut")
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let checkpoint = dir + "/cut/" + TrainingCheckpoint.fileName
        while process.isRunning && !FileManager.default.fileExists(atPath: checkpoint) { usleep(5_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let k = try TrainingCheckpoint.read(path: checkpoint).state.epoch
        XCTAssertLessThan(k, epochs, "killed before training ended")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/cut/model.safetensors"))

        r = try run(train(dir + "/cut", ["--resume"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from epoch \(k)"), r.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/whole/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/cut/model.safetensors")), "bit-identical model")
        let whole = try OutputFiles.readJSON(TrainResult.self, from: dir + "/whole/metrics.json")
        let resumed = try OutputFiles.readJSON(TrainResult.self, from: dir + "/cut/metrics.json")
        XCTAssertEqual(resumed.test, whole.test)
        XCTAssertEqual(resumed.epochsRun, whole.epochsRun)
        XCTAssertEqual(resumed.bestEpoch, whole.bestEpoch)
        let history = try String(contentsOfFile: dir + "/cut/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.count, 1 + epochs, "history.csv has every epoch")

        // A checkpoint of other settings is refused in one line naming it.
        r = try run(train(dir + "/cut", ["--resume", "--batch-size", "8"]))
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("cannot resume from \(checkpoint)"), r.output)
    }
}
