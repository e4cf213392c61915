import Foundation
import TestSupport
import XCTest

/// The benchmarks as a user runs them, at their smallest: every table prints its rows, and a
/// TensorFlow peer that fails says why in one line. Figures are not asserted (they are measured).
final class BenchCommandsTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try CLITests.runBinary(arguments) }

    func testEngineBenchmarkAgainstAPeerThatAnswersAndOneThatFails() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-bench-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A stand-in for a Python with TensorFlow: the peer protocol is one JSON line of figures
        // (scripts/bench-tensorflow.py --json); the real peer needs `make tensorflow`.
        let peer = dir + "/python"
        try """
            #!/bin/sh
            echo "TensorFlow 2.x (stand-in)"
            echo '{"model": "small", "tensorflow": "stand-in", "parameters": 1946993, "batch": 8, "threads": 1, "train_step_seconds": [2.0, 2.0], "infer_batch_seconds": [0.5, 0.5], "train_step_cpu_seconds": [2.0, 2.0], "infer_batch_cpu_seconds": [0.5, 0.5], "peak_rss_mib": 900}'
            """.write(toFile: peer, atomically: true, encoding: .utf8)
        chmod(peer, 0o755)
        var r = try run(["bench", "engine", "--steps", "1", "--paper-steps", "0", "--rounds", "2", "--tensorflow", peer, "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("CPU "), r.output)
        XCTAssertTrue(r.output.contains("round 2/2: engine step"), r.output)
        XCTAssertTrue(r.output.contains("TensorFlow training"), r.output)
        XCTAssertTrue(r.output.contains("TensorFlow peak RSS 900 MiB"), r.output)
        XCTAssertNotNil(r.output.range(of: #"ranksweep / TensorFlow: training [0-9.]+x wall"#, options: .regularExpression), r.output)

        try "#!/bin/sh\necho 'I0000 noise' >&2\necho 'ImportError: no tensorflow' >&2\nexit 1\n".write(toFile: peer, atomically: true, encoding: .utf8)
        chmod(peer, 0o755)
        r = try run(["bench", "engine", "--steps", "1", "--paper-steps", "0", "--rounds", "1", "--tensorflow", peer, "--threads", "1"])
        XCTAssertEqual(r.status, 1, r.output)
        let error = r.output.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        XCTAssertEqual(error.count, 1, r.output)
        XCTAssertTrue(error.first?.contains("TensorFlow benchmark failed") == true && error.first?.contains("ImportError: no tensorflow") == true, r.output)

        r = try run(["bench", "engine", "--tensorflow", dir + "/no-such-python"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("no Python at \(dir)/no-such-python"), r.output)
    }

    func testCompressionBenchmarkPrintsARowPerSetting() throws {
        let r = try run(["bench", "compression", "--base-filters", "4", "--image-size", "16", "--input-channels", "1",
                         "--runs", "1", "--rounds", "1", "--batch", "1", "--methods", "svd=2,arsvd=0.9"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("self-check (model against an unchanged copy)"), r.output)
        XCTAssertTrue(r.output.contains("| SVD r=2 |") || r.output.contains("| svd"), r.output)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| method") }.count, 2, r.output)
        let bad = try run(["bench", "compression", "--methods", "svd"])
        XCTAssertEqual(bad.status, 64, bad.output)
        XCTAssertTrue(bad.output.contains("--methods: 'svd' is not NAME=SETTING"), bad.output)
    }

    func testCoordinatorBenchmarksRunEveryJobOnce() throws {
        var r = try run(["bench", "coordinator", "--jobs", "300", "--workers", "1", "--outstanding", "1,4"])
        XCTAssertEqual(r.status, 0, r.output)
        let rows = r.output.split(separator: "\n").filter { $0.range(of: #"^\s+\d+ \|\s+\d+ \|"#, options: .regularExpression) != nil }
        XCTAssertEqual(rows.count, 2, r.output)
        r = try run(["bench", "coordinator", "--simulated-workers", "4", "--job-seconds", "0.05", "--jobs-per-worker", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.split(separator: "\n").contains { $0.hasPrefix("       4 |     8 |") && $0.hasSuffix("yes") }, r.output)
        let bad = try run(["bench", "coordinator", "--outstanding", "1,x"])
        XCTAssertEqual(bad.status, 64, bad.output)
        XCTAssertTrue(bad.output.contains("--outstanding"), bad.output)
    }
}
