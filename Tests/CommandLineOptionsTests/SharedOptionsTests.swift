import ArgumentParser
import Basics
import Foundation
import CommandLineOptions
import XCTest
@testable import Sweep

/// The shared option groups parsed as the commands parse them, without starting a process.
final class SharedOptionsTests: XCTestCase {
    struct Lists: ParsableArguments {
        @Option(transform: ListOption<Int>.ints("--ranks")) var ranks: ListOption<Int>?
        @Option(transform: ListOption<Double>.fractions("--taus")) var taus: ListOption<Double>?
    }

    func testCommaListsParseOnceAndNameTheFlagAndValue() throws {
        let ok = try Lists.parse(["--ranks", "50, 100,150", "--taus", "0.95,0.9"])
        XCTAssertEqual(ok.ranks?.values, [50, 100, 150])
        XCTAssertEqual(ok.taus?.values, [0.95, 0.9])
        XCTAssertEqual(ok.ranks?.description, "50,100,150")
        for (args, said) in [(["--ranks", "50,x"], "--ranks: \"x\" is not a positive integer"),
                             (["--ranks", "0"], "--ranks: \"0\" is not a positive integer"),
                             (["--taus", "1.5"], "--taus: \"1.5\" is not a number in (0, 1]")] {
            XCTAssertThrowsError(try Lists.parse(args)) { error in
                XCTAssertEqual(Lists.exitCode(for: error), .validationFailure, "\(args)")   // exit 64
                XCTAssertTrue(Lists.message(for: error).contains(said), Lists.message(for: error))
            }
        }
    }

    func testDataAndLayoutOptionsBecomeTheDataSource() throws {
        let data = try DataOptions.parse(["--data-root", "/data/hela", "--split-seed", "7", "--masks-dir", "labels", "--mask-threshold", "0"])
        let source = data.source
        XCTAssertEqual(source.root, "/data/hela")
        XCTAssertEqual(source.splitSeed, 7)
        XCTAssertEqual(source.datasetOptions?.masksDir, "labels")
        XCTAssertEqual(source.datasetOptions?.maskThreshold, 0)
        XCTAssertThrowsError(try DataOptions.parse(["--synthetic-count", "3"])) {
            XCTAssertTrue(DataOptions.message(for: $0).contains("--synthetic-count must be at least 10, got 3"))
        }
        XCTAssertThrowsError(try DatasetLayoutOptions.parse(["--mask-threshold", "300"]))
    }

    func testLoggingTimingAndThreadFlagsAreChecked() throws {
        XCTAssertThrowsError(try LoggingOptions.parse(["-q", "-v"])) { XCTAssertTrue(LoggingOptions.message(for: $0).contains("give -q or -v, not both")) }
        XCTAssertThrowsError(try LoggingOptions.parse(["--log-level", "loud"])) {
            XCTAssertTrue(LoggingOptions.message(for: $0).contains("--log-level must be debug, info, warn or error, got 'loud'"))
        }
        let timing = try TimingOptions.parse(["--heartbeat-ms", "250", "--liveness", "7"]).timing
        XCTAssertEqual(timing.heartbeatMs, 250)
        XCTAssertEqual(timing.liveness, 7)
        XCTAssertThrowsError(try TimingOptions.parse(["--heartbeat-ms", "5"]))
        XCTAssertThrowsError(try ThreadOptions.parse(["--threads", "0"])) {
            XCTAssertTrue(ThreadOptions.message(for: $0).contains("--threads must be at least 1, got 0"))
        }
        XCTAssertEqual(try ProgressOptions.parse(["--progress", "plain"]).progress, .plain)
        XCTAssertThrowsError(try ProgressOptions.parse(["--progress", "loud"]))
    }

    func testAnEarlierRunsModelIsReplacedOnlyWhenAskedAndTheReportIntervalIsBounded() throws {
        let dir = NSTemporaryDirectory() + "rs-outdir-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertNoThrow(try checkOutDir(dir, overwrite: false))
        FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data())
        XCTAssertThrowsError(try checkOutDir(dir, overwrite: false)) { XCTAssertTrue("\($0)".contains("--out-dir \(dir) already holds model.safetensors")) }
        XCTAssertNoThrow(try checkOutDir(dir, overwrite: true))
        XCTAssertEqual(try ReportOptions.parse([]).reportInterval, 30)
        XCTAssertThrowsError(try ReportOptions.parse(["--report-interval", "0.5"]))
    }
}
