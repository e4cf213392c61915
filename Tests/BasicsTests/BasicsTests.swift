import Foundation
import XCTest
@testable import Basics

final class BasicsTests: XCTestCase {
    func testUserPathsBecomeAbsoluteAgainstTheirBase() {
        XCTAssertEqual(UserPath.absolute("runs/x", relativeTo: "/home/u/work"), "/home/u/work/runs/x")
        XCTAssertEqual(UserPath.absolute("../data/./gray/", relativeTo: "/home/u/work"), "/home/u/data/gray")
        XCTAssertEqual(UserPath.absolute("/abs//p/../q"), "/abs/q")
        XCTAssertEqual(UserPath.absolute("x"), FileManager.default.currentDirectoryPath + "/x")
        XCTAssertTrue(UserPath.absolute("~/m").hasPrefix("/"))
    }

    func testCSVQuotesOnlyWhatMustBeQuoted() {
        var t = CSVTable(header: ["a", "b"])
        t.append(["plain", "with,comma"])
        t.append(["say \"hi\"", "two\nlines"])
        XCTAssertEqual(t.text, "a,b\nplain,\"with,comma\"\n\"say \"\"hi\"\"\",\"two\nlines\"\n")
    }

    func testAtomicWriteLeavesNoTemporaryFilesAndReplaces() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-basics-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try AtomicFile.write("one", to: dir + "/sub/f.txt")
        try AtomicFile.write("two", to: dir + "/sub/f.txt")
        XCTAssertEqual(try String(contentsOfFile: dir + "/sub/f.txt", encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/sub"), ["f.txt"])
        XCTAssertThrowsError(try AtomicFile.write("x", to: "/proc/no-such-dir/f")) { XCTAssertTrue("\($0)".contains("/proc/no-such-dir")) }
        // A folder is built aside and renamed in; a second writer finds it there.
        XCTAssertTrue(try AtomicFile.writeDirectory(at: dir + "/d") { try AtomicFile.write("a", to: $0 + "/a") })
        XCTAssertFalse(try AtomicFile.writeDirectory(at: dir + "/d") { try AtomicFile.write("b", to: $0 + "/b") })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/d"), ["a"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["d", "sub"])
    }

    func testLogTimestampIsISO8601WithDateAndZone() {
        let t = Log.timestamp()
        XCTAssertNotNil(t.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$"#, options: .regularExpression), t)
        XCTAssertEqual(Log.Level(name: "WARN"), .warn)
        XCTAssertNil(Log.Level(name: "loud"))
    }

    func testETAUsesTheWorkDoneSoFar() {
        let eta = ETAEstimator(start: 100)
        XCTAssertNil(eta.secondsLeft(done: 0, total: 10, now: 105))
        XCTAssertEqual(eta.secondsLeft(done: 2, total: 10, now: 110)!, 40, accuracy: 1e-9)
        XCTAssertEqual(ProgressDisplay.bar(fraction: 0.5, width: 4), "[##..]")
        XCTAssertEqual(formatDuration(3725), "1h02m")
    }

    func testSeedSpellingTurnsOnlyFlagNamesToKebabCase() {
        XCTAssertEqual(SeedSpelling.kebabCased(["--data_root", "my_data", "--out_dir=./a_b", "-q", "--", "--keep_me"]),
                       ["--data-root", "my_data", "--out-dir=./a_b", "-q", "--", "--keep_me"])
    }

    func testCPUInfoNamesTheProcessorAndItsFlags() throws {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        XCTAssertNotEqual(CPUInfo.modelName, "unknown")
        XCTAssertTrue(text.contains(CPUInfo.modelName))
        // Every x86-64 CPU has SSE2; the flags come from the same first processor.
        XCTAssertTrue(CPUInfo.flags.contains("sse2"), "flags: \(CPUInfo.flags.sorted().prefix(8))")
    }

    func testSpawnedChildCapturesOutputErrorsAndExitCode() throws {
        let ok = try SpawnedChild.capture(path: "/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 3"], environment: ["PATH": "/bin:/usr/bin"])
        XCTAssertEqual(ok.stdout, "out\n")
        XCTAssertEqual(ok.stderr, "err\n")
        XCTAssertEqual(ok.code, 3)
        XCTAssertNil(ok.signal)
        let killed = try SpawnedChild.capture(path: "/bin/sh", arguments: ["-c", "kill -9 $$"], environment: [:])
        XCTAssertEqual(killed.signal, 9)
        XCTAssertThrowsError(try SpawnedChild.capture(path: "/nonexistent/tool", arguments: [], environment: [:])) {
            XCTAssertTrue("\($0)".contains("/nonexistent/tool"), "\($0)")
        }
    }
}
