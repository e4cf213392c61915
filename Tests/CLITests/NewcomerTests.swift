import Foundation
import Pipeline
import XCTest

/// The user's path, walked as a newcomer walks it: the real binary, run from a fresh temporary
/// working directory, with relative paths only, the README's and the seed pipeline's command lines
/// as written, on a folder of grayscale PNGs the test writes.
final class NewcomerTests: XCTestCase {
    static let root = CLITests.root
    static let binary = CLITests.binary

    /// A fresh, empty working directory, removed after the test.
    func workingDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-newcomer-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Runs `ranksweep ARGS` in `cwd`; output is stdout and stderr together.
    @discardableResult
    func ranksweep(_ arguments: [String], in cwd: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let log = cwd + "/.out-\(UUID()).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// `count` grayscale 8-bit PNG pairs in `DIR/images` + `DIR/masks`, written by the tool itself.
    func writeGrayDataset(_ dir: String, in cwd: String, count: Int = 20, size: Int = 32) throws {
        let r = try ranksweep(["dataset", "synth", "--out", dir, "--count", String(count), "--size", String(size), "--seed", "5", "--gray"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The README's main command with no arguments at all: every job done, the report written, and
    /// `status` and `report` work on the state dir it printed.
    func testRunWithNoArgumentsFromAFreshDirectory() throws {
        let cwd = try workingDirectory()
        var r = try ranksweep(["run", "--progress", "plain"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("sweep complete: 7 done, 0 failed of 7 jobs"), r.output)
        guard let line = r.output.split(separator: "\n").first(where: { $0.hasPrefix("sweep state in ") }) else {
            return XCTFail("no state dir printed:\n" + r.output)
        }
        let stateDir = String(line.dropFirst("sweep state in ".count).prefix { $0 != ";" })
        XCTAssertTrue(stateDir.hasPrefix(cwd + "/runs/sweep-") || stateDir.hasPrefix("/private" + cwd), stateDir)
        XCTAssertTrue(exists(stateDir + "/report/report.html"), r.output)
        r = try ranksweep(["status", "--state-dir", stateDir], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("7 done"), r.output)
        r = try ranksweep(["report", "--state-dir", stateDir], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(exists(stateDir + "/report/results.csv"))
    }

    /// The seed's `run` line, verbatim but for the program name and smaller epochs, on gray PNGs
    /// in a relative folder; then its `train` and `compress` lines with `--model_path`; then
    /// `evaluate` with default flags. Gray data gives a gray (1-channel) model by default, and every
    /// later step converts the data the same way.
    func testSeedCommandsOnGrayscaleData() throws {
        let cwd = try workingDirectory()
        try writeGrayDataset("gray", in: cwd)
        var r = try ranksweep(["run", "--data_root", "gray", "--epochs", "2", "--batch_size", "4", "--svd_ranks", "2,4",
                               "--arsvd_taus", "0.9", "--run_compression", "--out_dir", "./results", "--progress", "plain"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("sweep complete: 4 done, 0 failed of 4 jobs"), r.output)
        XCTAssertTrue(exists(cwd + "/results/report/results.csv"), r.output)

        r = try ranksweep(["train", "--data_root", "gray", "--epochs", "2", "--augment", "--patience", "15", "--image_size", "32",
                           "--base_filters", "4", "--depth", "2", "--batch_size", "4", "--out_dir", "./training"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("gray images, as stored"), r.output)
        let metadata = try String(decoding: Data(contentsOf: URL(fileURLWithPath: cwd + "/training/model.safetensors")).prefix(4096), as: UTF8.self)
        XCTAssertTrue(metadata.contains("\\\"inputChannels\\\":1"), "a gray model by default")

        r = try ranksweep(["compress", "--data_root", "gray", "--model_path", "./training/model.safetensors", "--svd_ranks", "2",
                           "--arsvd_taus", "0.9", "--finetune_epochs", "1", "--out_dir", "./compression"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(exists(cwd + "/compression/svd_r2/result.json") && exists(cwd + "/compression/arsvd_tau0.9/result.json"), r.output)

        // evaluate with defaults: the model's own data, recorded as an absolute path, found from anywhere.
        try FileManager.default.createDirectory(atPath: cwd + "/elsewhere", withIntermediateDirectories: true)
        r = try ranksweep(["evaluate", "--model", "../compression/svd_r2/model.safetensors"], in: cwd + "/elsewhere")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("test split ("), r.output)
    }

    /// A colour model (`--channels 3`) on gray data: compress and evaluate convert the data as
    /// training did instead of refusing.
    func testColourModelOnGrayDataIsConvertedNotRefused() throws {
        let cwd = try workingDirectory()
        try writeGrayDataset("gray", in: cwd, count: 16)
        var r = try ranksweep(["train", "--data-root", "gray", "--channels", "3", "--epochs", "1", "--image-size", "32",
                               "--base-filters", "4", "--depth", "2", "--batch-size", "4", "--out-dir", "base"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("gray images repeated into RGB"), r.output)
        r = try ranksweep(["compress", "--model", "base/model.safetensors", "--data-root", "gray", "--method", "svd", "--rank", "2",
                           "--finetune-epochs", "0", "--out-dir", "cmp"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        r = try ranksweep(["evaluate", "--model", "cmp/model.safetensors", "--data-root", "gray"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
    }

    /// Exit statuses a script can rely on: 64 for a usage error, 2 for a sweep that finished with a
    /// failed job, and `--version`.
    func testExitStatusesAndVersion() throws {
        let cwd = try workingDirectory()
        var r = try ranksweep(["train", "--out-dir", "o", "--no-such-flag"], in: cwd)
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("Error:") && r.output.contains("--no-such-flag"), r.output)
        r = try ranksweep(["run", "--epochs", "0"], in: cwd)
        XCTAssertEqual(r.status, 64, r.output)
        r = try ranksweep(["--version"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertNotNil(r.output.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression), r.output)

        try "jobs: [{kind: fail, count: 1, spec: {message: \"broken on purpose\"}}]\nnoop: 2\nmax_attempts: 1\n"
            .write(toFile: cwd + "/failing.yaml", atomically: true, encoding: .utf8)
        r = try ranksweep(["run", "failing.yaml", "--state-dir", "st", "--progress", "none"], in: cwd)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("2 done, 1 failed of 3"), r.output)
    }

    /// SIGTERM (a Slurm preemption) during `train`: the model so far is saved and the status is 143.
    func testTerminatedTrainingSavesAndExits143() throws {
        let cwd = try workingDirectory()
        try writeGrayDataset("gray", in: cwd, count: 16)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["train", "--data-root", "gray", "--image-size", "32", "--base-filters", "4", "--depth", "2",
                             "--epochs", "100000", "--batch-size", "4", "--patience", "100000", "--out-dir", "base"]
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let log = cwd + "/train.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "val loss").count < 2 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        // history.csv is written as training goes, so it can be followed live.
        let live = (try? String(contentsOfFile: cwd + "/base/history.csv", encoding: .utf8)) ?? ""
        XCTAssertGreaterThanOrEqual(live.split(separator: "\n").count, 2, "header and at least one epoch while training runs")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(process.terminationStatus, 143, output)
        XCTAssertTrue(exists(cwd + "/base/model.safetensors"), output)
    }

    /// Bad input given to `run` is found before anything starts: one line naming the user's file,
    /// a non-zero exit, no state dir left behind, no job attempted.
    func testBadSweepInputsAreRefusedBeforeAnyStateExists() throws {
        let cwd = try workingDirectory()
        try writeGrayDataset("gray", in: cwd, count: 12)
        // A truncated baseline model.
        var r = try ranksweep(["train", "--data-root", "gray", "--epochs", "1", "--image-size", "32", "--base-filters", "4",
                               "--depth", "2", "--batch-size", "4", "--out-dir", "base"], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        let model = try Data(contentsOf: URL(fileURLWithPath: cwd + "/base/model.safetensors"))
        try model.prefix(model.count / 2).write(to: URL(fileURLWithPath: cwd + "/truncated.safetensors"))
        r = try ranksweep(["run", "--data-root", "gray", "--model", "truncated.safetensors", "--state-dir", "st1"], in: cwd)
        XCTAssertEqual(r.status, 1, r.output)
        let lines = r.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.output)
        XCTAssertTrue(r.output.hasPrefix("Error: " + cwd + "/truncated.safetensors: "), r.output)
        XCTAssertFalse(exists(cwd + "/st1"), "no state dir left behind")

        // A corrupt PNG in the dataset, through a sweep file whose data_root is relative to the file.
        try FileManager.default.createDirectory(atPath: cwd + "/sweeps", withIntermediateDirectories: true)
        let victim = try FileManager.default.contentsOfDirectory(atPath: cwd + "/gray/images").sorted()[3]
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: cwd + "/gray/images/" + victim))
        try "data_root: ../gray\nimage_size: 32\nmodel: {base_filters: 4, depth: 2}\nbaseline: {epochs: 1}\n"
            .write(toFile: cwd + "/sweeps/s.yaml", atomically: true, encoding: .utf8)
        r = try ranksweep(["run", "sweeps/s.yaml", "--state-dir", "st2"], in: cwd)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertEqual(r.output.split(separator: "\n").count, 1, r.output)
        XCTAssertTrue(r.output.contains(cwd + "/gray/images/" + victim), r.output)
        XCTAssertFalse(exists(cwd + "/st2"), "no state dir left behind")
        r = try ranksweep(["coordinator", "--sweep", "sweeps/s.yaml", "--state-dir", "st3", "--bind", "tcp://127.0.0.1:*"], in: cwd)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains(cwd + "/gray/images/" + victim), r.output)
        XCTAssertFalse(exists(cwd + "/st3"), "no state dir left behind")
    }

    /// A user's clone has no shared folder beside it: nothing in the repository may reach for it.
    func testNothingInTheRepositoryDependsOnAFolderBesideIt() throws {
        let fm = FileManager.default
        var offenders: [String] = []
        for top in ["Sources", "Tests", "scripts", "cluster", "Makefile", "README.md", "Package.swift", ".ci"] {
            let base = Self.root.appendingPathComponent(top).path
            var files = [base]
            if let e = fm.enumerator(atPath: base) { files = e.compactMap { $0 as? String }.map { base + "/" + $0 } }
            for f in files where !f.hasSuffix(".safetensors") {
                guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { continue }
                // Spelled in pieces so that this test does not find itself.
                let outside = ["..", "/shared"].joined(), golden = ["shared", "/golden"].joined()
                if text.contains(outside) || text.contains(golden) || text.contains("ANCHORS" + ".md") || text.contains("DESIGN" + ".md") {
                    offenders.append(f)
                }
            }
        }
        XCTAssertEqual(offenders, [], "these files refer to a folder outside the repository")
    }

    /// The README's quickstart as written: each line of its block run by `sh` in a fresh directory
    /// with the built `ranksweep` first on the PATH; a line ending in `&` runs in the background
    /// (the coordinator), and must end by itself once its worker has finished the sweep.
    func testReadmeQuickstartAsWritten() throws {
        let readme = try String(contentsOfFile: Self.root.appendingPathComponent("README.md").path, encoding: .utf8)
        guard let marker = readme.range(of: "<!-- quickstart"), let open = readme.range(of: "```sh\n", range: marker.upperBound ..< readme.endIndex),
              let close = readme.range(of: "```", range: open.upperBound ..< readme.endIndex) else {
            return XCTFail("README.md has no quickstart block after <!-- quickstart")
        }
        let lines = readme[open.upperBound ..< close.lowerBound].split(separator: "\n").map(String.init)
            .map { $0.replacingOccurrences(of: #"\s+#\s.*$"#, with: "", options: .regularExpression) }
            .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        XCTAssertGreaterThanOrEqual(lines.count, 8, "\(lines)")
        for step in ["dataset synth", "train", "compress", "run", "run budget.yaml", "report", "coordinator", "worker --connect tcp://127.0.0.1"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix("ranksweep \(step)") }, "the quickstart shows `ranksweep \(step)`")
        }
        let cwd = try workingDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = (Self.binary as NSString).deletingLastPathComponent + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        func shell(_ line: String, log: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", line]
            process.currentDirectoryURL = URL(fileURLWithPath: cwd)
            process.environment = environment
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = FileHandle(forWritingAtPath: log)!
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return process
        }
        var background: [(Process, String)] = []
        for (i, raw) in lines.enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            let log = cwd + "/.step-\(i).log"
            if line.hasSuffix("&") {
                line.removeLast()
                background.append((try shell(line, log: log), log))
                continue
            }
            let process = try shell(line, log: log)
            process.waitUntilExit()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(process.terminationStatus, 0, "`\(line)`:\n\(output)")
            if process.terminationStatus != 0 { break }
        }
        for (process, log) in background {
            let deadline = Date().addingTimeInterval(120)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if process.isRunning { kill(process.processIdentifier, SIGINT); process.waitUntilExit() }
            XCTAssertEqual(process.terminationStatus, 0, "the background step ends when its sweep is complete:\n" + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
        }
        for file in ["base/model.safetensors", "cmp/comparison.csv", "cmp/comparison.md", "sweep/report/report.html", "r2.onnx", "sweep2/sweep.sqlite",
                     "budget/report/sensitivity.json"] {
            XCTAssertTrue(exists(cwd + "/" + file), "the quickstart wrote \(file)")
        }
        XCTAssertFalse(((try? FileManager.default.contentsOfDirectory(atPath: cwd + "/sweep/report/models")) ?? []).isEmpty, "report/models holds the chosen models")
        let status = try ranksweep(["status", "--state-dir", "sweep2"], in: cwd)
        XCTAssertTrue(status.output.contains("complete"), status.output)
    }
}
