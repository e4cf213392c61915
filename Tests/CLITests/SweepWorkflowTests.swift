import Foundation
import XCTest

/// A sweep as a user runs it, with the real binary and tiny data: getting the models out, resuming
/// a state dir as the tool says, and Ctrl-C on `run` keeping the work done so far.
final class SweepWorkflowTests: XCTestCase {
    static let fixture = CLITests.root.appendingPathComponent("Tests/Fixtures/small-sweep.yaml").path

    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-sweep-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try CLITests.runBinary(arguments) }

    /// A run of the binary in the background, its output in a file.
    final class Background {
        let process = Process()
        let log: String
        init(_ arguments: [String], log: String) throws {
            self.log = log
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = FileHandle(forWritingAtPath: log)!
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = arguments
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }
        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    func waitFor(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) rethrows {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTFail("not within \(seconds) s: \(what)")
    }

    /// The tiny sweep: one baseline and its compressions on one worker thread.
    func runSweep(_ sweep: String, stateDir: String) throws -> (status: Int32, output: String) {
        try run(["run", sweep, "--state-dir", stateDir, "--local-workers", "1", "--threads", "1", "--progress", "plain"])
    }

    func testReportAndExportGetTheModelsOutAndRunResumesTheStoredSweep() throws {
        let dir = try temporaryDirectory()
        let state = dir + "/state"
        var r = try runSweep(SweepWorkflowTests.fixture, stateDir: state)
        XCTAssertEqual(r.status, 0, r.output)

        r = try run(["report", "--state-dir", state, "--overlay-images", "0"])
        XCTAssertEqual(r.status, 0, r.output)
        let models = try FileManager.default.contentsOfDirectory(atPath: state + "/report/models").sorted()
        XCTAssertFalse(models.isEmpty, "the recommended / Pareto models are in report/models")
        XCTAssertTrue(models.allSatisfy { $0.hasSuffix(".safetensors") }, "\(models)")
        let csv = try String(contentsOfFile: state + "/report/results.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        let header = csv[0].split(separator: ",").map(String.init)
        let modelColumn = try XCTUnwrap(header.firstIndex(of: "model"))
        let artifactColumn = try XCTUnwrap(header.firstIndex(of: "model_artifact"))
        for line in csv.dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let job = cells[0]
            XCTAssertTrue(FileManager.default.fileExists(atPath: cells[artifactColumn]), "\(job)'s model artifact exists: \(line)")
            if models.contains(job + ".safetensors") { XCTAssertEqual(cells[modelColumn], "models/\(job).safetensors") }
        }
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/report/results.json"))) as? [String: Any])
        let rows = try XCTUnwrap(json["rows"] as? [[String: Any]])
        XCTAssertTrue(rows.allSatisfy { $0["modelArtifact"] is String }, "results.json names every finished job's model")

        r = try run(["report", "--state-dir", state, "--overlay-images", "0", "--all-models", "--out", dir + "/all"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/all/models").sorted(),
                       ["arsvd-t0.9-s1.safetensors", "svd-r2-s1.safetensors", "svd-r4-s1.safetensors", "train-s1.safetensors"].sorted(),
                       "--all-models: every job's")

        // export: a job's model as safetensors (the artifact's bytes) and as ONNX.
        r = try run(["export", "--state-dir", state, "--job", "svd-r2-s1", "--out", dir + "/r2.safetensors", "--onnx", dir + "/r2.onnx"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/r2.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/all/models/svd-r2-s1.safetensors")))
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: dir + "/r2.onnx")[.size] as? Int ?? 0, 1000)
        r = try run(["evaluate", "--model", dir + "/r2.safetensors"])
        XCTAssertEqual(r.status, 0, "the exported model evaluates\n" + r.output)
        r = try run(["export", "--state-dir", state, "--job", "nope", "--out", dir + "/x.safetensors"])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("has no job nope") && r.output.contains("train-s1"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.safetensors"))

        // run --state-dir with no sweep file resumes the stored sweep: nothing added, nothing rerun.
        r = try run(["run", "--state-dir", state, "--local-workers", "1", "--threads", "1", "--progress", "plain"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.output.contains("extends the sweep"), r.output)
        XCTAssertTrue(r.output.contains("4 jobs: 4 done"), r.output)
        // ...and refuses a flag that would change it, leaving it as it was.
        r = try run(["run", "--state-dir", state, "--epochs", "3"])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--epochs changes the sweep"), r.output)
    }

    /// `retry` prints how to run the requeued jobs; both commands it names work as printed.
    func testRetryHintsWorkAsPrinted() throws {
        let dir = try temporaryDirectory()
        let state = dir + "/state"
        let sweep = try String(contentsOfFile: SweepWorkflowTests.fixture, encoding: .utf8)
            .replacingOccurrences(of: "max_attempts: 2", with: "max_attempts: 1")
            .replacingOccurrences(of: "{svd_ranks: [2, 4], arsvd_taus: [0.9]}", with: "{svd_ranks: [2], arsvd_taus: []}")
            .replacingOccurrences(of: "baseline: {epochs: 2,", with: "baseline: {epochs: 500,")
            // The baseline times out: it runs far longer than the first timeout check (half a heartbeat).
            + "job_timeout: 0.001\n"
        try sweep.write(toFile: dir + "/sweep.yaml", atomically: true, encoding: .utf8)
        var r = try runSweep(dir + "/sweep.yaml", stateDir: state)
        XCTAssertEqual(r.status, 2, r.output)

        r = try run(["retry", "--state-dir", state, "--failed"])
        XCTAssertEqual(r.status, 0, r.output)
        let hints = r.output.components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        XCTAssertEqual(hints.count, 2, r.output)
        let commands = hints.map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(commands.map { $0.first }, ["ranksweep", "ranksweep"], r.output)

        let requeued = try XCTUnwrap(r.output.components(separatedBy: "requeued ").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) })
        XCTAssertGreaterThan(requeued, 0, r.output)

        // The `coordinator` hint, as printed: it binds (loopback, no keys needed) and serves the stored sweep.
        let coordinator = try Background(Array(commands[1].dropFirst()), log: dir + "/coordinator.log")
        waitFor(60, "the coordinator listens") { coordinator.output.contains("listening on") || !coordinator.process.isRunning }
        XCTAssertTrue(coordinator.output.contains("listening on tcp://127.0.0.1:5555"), coordinator.output)
        XCTAssertTrue(coordinator.output.contains("resuming the sweep") && coordinator.output.contains("\(requeued) to run"), coordinator.output)
        kill(coordinator.process.processIdentifier, SIGINT)
        coordinator.process.waitUntilExit()
        XCTAssertEqual(coordinator.process.terminationStatus, 130, coordinator.output)

        // The `run` hint, as printed: resumes the stored sweep and runs the requeued jobs (the
        // 1 ms job_timeout is stored with the sweep, so they may time out again: exit 0 or 2).
        r = try run(Array(commands[0].dropFirst()))
        XCTAssertTrue(r.status == 0 || r.status == 2, r.output)
        XCTAssertTrue(r.output.contains("resuming the sweep") && r.output.contains("\(requeued) to run"), r.output)
        XCTAssertTrue(r.output.contains("sweep complete:") && r.output.contains(" of 2 jobs"), "the stored sweep's 2 jobs, nothing added\n" + r.output)
        XCTAssertFalse(r.output.contains("extends the sweep"), r.output)
    }

    /// Ctrl-C on `run`: the local worker hands back its job with its newest checkpoint before the
    /// coordinator leaves (and says it waits); status shows no worker alive; the next `run` on the
    /// state dir resumes the baseline past epoch 1.
    func testSIGINTToRunKeepsTheCheckpointAndTheNextRunResumesPastEpoch1() throws {
        let dir = try temporaryDirectory()
        let state = dir + "/state"
        let sweep = """
            synthetic: {count: 40, size: 32, seed: 5}
            image_size: 32
            model: {base_filters: 4, depth: 2, channels: 3}
            baseline: {epochs: 40, batch_size: 4, lr: 0.003, patience: 40, lr_patience: 5, augment: true}
            compression: {svd_ranks: [2], arsvd_taus: []}
            fine_tune: {epochs: 1, lr: 0.0001}
            seeds: [1]
            checkpoint_seconds: 3600

            """   // one upload an hour: the checkpoint that lands is the one sent at the stop
        try sweep.write(toFile: dir + "/sweep.yaml", atomically: true, encoding: .utf8)
        let first = try Background(["run", dir + "/sweep.yaml", "--state-dir", state, "--local-workers", "1", "--threads", "1", "--progress", "plain"],
                                   log: dir + "/run-1.log")
        var epoch = 0
        try waitFor(240, "epoch 3 of the baseline") {
            guard first.process.isRunning else { return true }
            let r = try run(["status", "--state-dir", state, "--json"])
            guard r.status == 0, let o = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any],
                  let workers = o["workers"] as? [[String: Any]] else { return false }
            epoch = workers.flatMap { ($0["running"] as? [[String: Any]]) ?? [] }.compactMap { $0["epoch"] as? Int }.max() ?? 0
            return epoch >= 3
        }
        XCTAssertTrue(first.process.isRunning, "the sweep still runs at epoch 3\n" + first.output)
        kill(first.process.processIdentifier, SIGINT)
        first.process.waitUntilExit()
        XCTAssertEqual(first.process.terminationStatus, 130, first.output)
        XCTAssertTrue(first.output.contains("waiting for 1 worker(s) to hand back"), first.output)
        XCTAssertTrue(first.output.contains("leaving"), "the worker said goodbye before the coordinator left\n" + first.output)

        var r = try run(["status", "--state-dir", state])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.output.contains("alive"), "no worker is shown alive after the stop\n" + r.output)
        XCTAssertTrue(r.output.contains("(left,"), r.output)

        r = try run(["run", "--state-dir", state, "--local-workers", "1", "--threads", "1", "--progress", "plain"])
        XCTAssertEqual(r.status, 0, r.output)
        let logs = try FileManager.default.contentsOfDirectory(atPath: state + "/logs")
            .map { (try? String(contentsOfFile: state + "/logs/" + $0, encoding: .utf8)) ?? "" }.joined(separator: "\n")
        let resumed = logs.components(separatedBy: "resumed from epoch ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
        XCTAssertFalse(resumed.isEmpty, "the baseline resumed from its checkpoint\n" + logs.suffix(3000))
        XCTAssertGreaterThanOrEqual(resumed.max() ?? 0, 3, "past epoch 1: the checkpoint sent at the stop landed\n" + logs.suffix(3000))
    }
}
