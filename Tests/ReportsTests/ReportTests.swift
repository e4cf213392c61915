import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Imaging
import XCTest
@testable import Reports

/// Reports of real sweeps: the binary's `run` (which writes the report by itself) and `report`.
final class ReportTests: XCTestCase {
    override class func tearDown() { Fixture.removeTemporaries() }

    /// The report of a finished sweep: table values equal the stored results, HTML parses with one
    /// SVG per chart, overlays decode at the expected size.
    func testFinishedSweepReport() throws {
        /// JSONDecoder (swift-corelibs) and JSONSerialization may round the same decimal text to
        /// neighbouring doubles: compare to 1e-12 relative.
        func same(_ a: String?, _ b: Any?, _ what: String, line: UInt = #line) {
            guard let a = a.flatMap(Double.init), let b = b as? Double else { return XCTFail("\(what): \(String(describing: a)) vs \(String(describing: b))", line: line) }
            XCTAssertEqual(a, b, accuracy: 1e-12 * max(1, abs(b)), what, line: line)
        }
        let (state, runOutput) = try Fixture.finishedSweep()
        // `ranksweep run` wrote the report itself when the sweep completed.
        XCTAssertTrue(runOutput.contains("report written to \(state)/report"), runOutput)
        XCTAssertTrue(FileManager.default.fileExists(atPath: state + "/report/report.html"))

        let out = Fixture.tempDir("out") + "/rep"
        let r = try Fixture.run(["report", "--state-dir", state, "--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("complete: 4 done"), r.output)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files, ["models", "overlays", "report.html", "report.md", "results.csv", "results.json"])
        let parent = (out as NSString).deletingLastPathComponent
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["rep"], "no temporary folders left")

        // results.csv against the database's result JSON.
        let stored = try Fixture.storedResults(state)
        let csv = parseCSV(try String(contentsOfFile: out + "/results.csv", encoding: .utf8))
        XCTAssertEqual(csv.map { $0["job"]! }.sorted(), ["arsvd-t0.9-s1", "svd-r2-s1", "svd-r4-s1", "train-s1"])
        for row in csv {
            let result = try XCTUnwrap(stored[row["job"]!])
            XCTAssertEqual(row["status"], "done")
            if row["kind"] == "train" {
                let test = result["test"] as! [String: Any]
                same(row["dice_final"], test["dice"], "baseline dice")
                XCTAssertEqual(Int(row["parameters"]!), result["parameters"] as? Int)
                XCTAssertEqual(Int(row["flops"]!), result["forwardFLOPsPerImage"] as? Int)
                XCTAssertEqual(row["method"], "baseline")
                continue
            }
            let summary = result["summary"] as! [String: Any]
            func dice(_ key: String) -> Double? { (result[key] as? [String: Any])?["dice"] as? Double }
            same(row["dice_before_ft"], dice("afterFactorisation"), row["job"]! + " dice_before_ft")
            same(row["dice_recalibrated"], dice("afterRecalibration"), row["job"]! + " dice_recalibrated")
            same(row["dice_fine_tuned"], dice("afterFineTune"), row["job"]! + " dice_fine_tuned")
            same(row["dice_final"], dice("final"), row["job"]! + " dice_final")
            XCTAssertEqual(row["chosen"], result["chosen"] as? String)
            let candidates = try XCTUnwrap(result["candidates"] as? [[String: Any]])
            let best = candidates.compactMap { $0["valDice"] as? Double }.max()
            XCTAssertEqual(candidates.first { $0["name"] as? String == row["chosen"] }?["valDice"] as? Double, best, "the chosen one is the best on validation")
            same(row["dice_recovery_percent"], result["diceRecoveryPercent"] as? Double, row["job"]! + " dice_recovery_percent")
            same(row["parameter_reduction_percent"], summary["parameterReductionPercent"] as? Double, row["job"]! + " parameter_reduction_percent")
            XCTAssertEqual(Int(row["parameters"]!), summary["parametersAfter"] as? Int)
            same(row["flop_reduction_percent"], summary["flopReductionPercent"] as? Double, row["job"]! + " flop_reduction_percent")
            same(row["speed_up"], (result["latency"] as? [String: Any])?["speedUp"] as? Double, row["job"]! + " speed_up")
            XCTAssertEqual(Int(row["epochs"]!), result["fineTuneEpochs"] as? Int)
            XCTAssertEqual(row["attempts"], "1")
            XCTAssertEqual(row["host"]?.isEmpty, false)
            let method = result["method"] as! [String: Any]
            XCTAssertEqual(row["method"], method["method"] as? String)
            XCTAssertEqual(row["rank"].flatMap { Int($0) }, method["rank"] as? Int)
            XCTAssertEqual(row["tau"].flatMap { Double($0) }, method["tau"] as? Double)
        }

        // results.json holds the same rows.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as! [String: Any]
        XCTAssertEqual(json["complete"] as? Bool, true)
        let jsonRows = json["rows"] as! [[String: Any]]
        XCTAssertEqual(jsonRows.count, 4)
        for row in jsonRows where row["kind"] as? String == "compress" {
            let result = stored[row["job"] as! String]!
            same((row["diceAfterFineTune"] as? Double).map { "\($0)" }, (result["final"] as! [String: Any])["dice"], "json dice")
            same((row["diceRecoveryPercent"] as? Double).map { "\($0)" }, result["diceRecoveryPercent"], "json recovery")
        }
        XCTAssertNotNil((json["recommendation"] as? [String: Any])?["sentences"])

        // report.md: the seed's table with the baseline row, and the recommendation.
        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("| Method | Rank/Tau | Before FT | Final | Chosen | Recovery | Param reduction |"), md)
        XCTAssertTrue(md.contains("| Baseline | – |"), md)
        XCTAssertTrue(md.contains("| SVD | r=2 |") && md.contains("| ARSVD | tau=0.9 |"), md)
        XCTAssertTrue(md.contains("at least 95% of the baseline's"), md)
        let svd2 = csv.first { $0["job"] == "svd-r2-s1" }!
        XCTAssertTrue(md.contains(String(format: "| %.4f | %@ |", Double(svd2["dice_final"]!)!, svd2["chosen"]!)), md)

        // report.html: well-formed XML, self-contained, one <svg> per chart.
        let html = try Data(contentsOf: URL(fileURLWithPath: out + "/report.html"))
        let check = XMLCheck.parse(html)
        XCTAssertNil(check.error, "report.html is not well-formed: \(String(describing: check.error))")
        XCTAssertEqual(check.elements.filter { $0 == "svg" }.count, 6)
        XCTAssertEqual(Set(check.ids), ["pareto", "method-fronts", "finetune", "ranks", "energy", "curves"])
        XCTAssertFalse(check.elements.contains("script"))
        let text = String(decoding: html, as: UTF8.self)
        XCTAssertFalse(text.contains("http://") && text.replacingOccurrences(of: "http://www.w3.org/", with: "").contains("http://"),
                       "no external links")
        XCTAssertTrue(text.contains("Pareto front") && text.contains("baseline Dice"))
        // Overlays for the first three test images (this split has only 2).
        let testImages = (stored["train-s1"]!["test"] as! [String: Any])["images"] as! Int
        XCTAssertEqual(check.elements.filter { $0 == "img" }.count, min(3, testImages), "overlays embedded")

        // overlays: PNGs of input | truth | baseline | best | smallest at 32 px.
        let overlays = (json["overlays"] as! [[String: Any]])
        XCTAssertEqual(overlays.count, min(3, testImages))
        for o in overlays {
            let panels = (o["panels"] as! [String]).count
            XCTAssertGreaterThanOrEqual(panels, 4)
            let png = try PNGCodec.read(path: out + "/overlays/" + (o["file"] as! String))
            XCTAssertEqual(png.shape, [32, panels * 32 + (panels - 1) * Overlay.gap, 3])
        }
    }

    /// Failed, running and queued jobs are in the report, marked with their state and reasons.
    func testPartialSweepMarksUnfinishedJobs() throws {
        let state = try Fixture.partialSweep()
        let out = Fixture.tempDir("partial-out") + "/report"
        let summary = try ReportWriter(stateDir: state, outDir: out).write()
        XCTAssertTrue(summary.statusLine.hasPrefix("partial"), summary.statusLine)
        XCTAssertTrue(summary.statusLine.contains("2 done, 1 failed, 1 running, 1 queued of 5 jobs"), summary.statusLine)
        XCTAssertEqual(summary.overlays, 2, "the first three test images; this split has two")

        let csv = parseCSV(try String(contentsOfFile: out + "/results.csv", encoding: .utf8))
        let status = Dictionary(uniqueKeysWithValues: csv.map { ($0["job"]!, $0["status"]!) })
        XCTAssertEqual(status, ["train-s1": "done", "svd-r2-s1": "done", "svd-r4-s1": "failed", "arsvd-t0.9-s1": "queued", "svd-r8-s1": "running"])
        let failed = csv.first { $0["job"] == "svd-r4-s1" }!
        XCTAssertEqual(failed["failure_reason"], "failed 2 times: NaN loss at epoch 1")
        XCTAssertEqual(failed["attempts"], "2")
        XCTAssertEqual(failed["dice_final"], "")

        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("## Failed jobs"), md)
        XCTAssertTrue(md.contains("`svd-r4-s1`: failed 2 times: NaN loss at epoch 1"), md)
        XCTAssertTrue(md.contains("attempt 2 on w1: failed (NaN loss at epoch 1 (attempt 2))"), md)
        XCTAssertTrue(md.contains("`arsvd-t0.9-s1` (queued): queued, not started"), md)
        XCTAssertTrue(md.contains("`svd-r8-s1` (running): running on w1"), md)
        XCTAssertTrue(md.contains("| SVD | r=4 | – | – | – |"), md)
        XCTAssertTrue(md.contains("3 without a result (1 failed, 1 queued, 1 running)"), md)

        let html = try Data(contentsOf: URL(fileURLWithPath: out + "/report.html"))
        let check = XMLCheck.parse(html)
        XCTAssertNil(check.error, String(describing: check.error))
        XCTAssertEqual(check.elements.filter { $0 == "svg" }.count, 6)
        let text = String(decoding: html, as: UTF8.self)
        XCTAssertTrue(text.contains("class=\"status-failed\"") && text.contains("class=\"status-queued\"") && text.contains("class=\"status-running\""))
        XCTAssertTrue(text.contains("not shown (no result yet): 1 failed, 1 queued, 1 running"), "the Pareto chart says what is missing")

        // Writing again replaces the report whole and leaves nothing else beside it.
        try ReportWriter(stateDir: state, outDir: out).write()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: (out as NSString).deletingLastPathComponent), ["report"])
    }

    /// A state dir that is missing or not a sweep's: one line naming it, non-zero exit.
    func testBadStateDirGivesOneLineError() throws {
        let missing = Fixture.tempDir("bad") + "/nope"
        var r = try Fixture.run(["report", "--state-dir", missing])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.output, "Error: state dir \(missing) does not exist or is not a directory\n")
        let empty = Fixture.tempDir("empty")
        r = try Fixture.run(["report", "--state-dir", empty])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.output, "Error: state dir \(empty) has no sweep.sqlite (not a sweep state dir)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty + "/report"), "nothing written")
    }
}
