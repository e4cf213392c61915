import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import Reports

/// The report of a sweep with grid axes: one results.csv column per varied axis, a section per
/// baseline configuration with its table and Pareto chart, and a summary across them.
final class GridReportTests: XCTestCase {
    override class func tearDown() { Fixture.removeTemporaries() }

    func testReportGroupsByBaselineConfiguration() throws {
        let dir = Fixture.tempDir("grid")
        let yaml = Fixture.sweepYAML
            .replacingOccurrences(of: "model: {base_filters: 4,", with: "model: {base_filters: [3, 4],")
            .replacingOccurrences(of: "fine_tune: {epochs: 1, lr: 0.0001}", with: "fine_tune: {epochs: 1, lr: [0.0001, 0.0002]}")
            .replacingOccurrences(of: "{svd_ranks: [2, 4], arsvd_taus: [0.9]}", with: "{svd_ranks: [2], arsvd_taus: []}")
        XCTAssertNotEqual(yaml, Fixture.sweepYAML)
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir + "/sweep.yaml"))
        let r = try Fixture.run(["run", dir + "/sweep.yaml", "--state-dir", dir + "/state", "--local-workers", "2"], timeout: 240)
        XCTAssertEqual(r.status, 0, r.output)

        let csvText = try String(contentsOfFile: dir + "/state/report/results.csv", encoding: .utf8)
        let lines = csvText.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = lines[0]
        XCTAssertEqual(Array(header[5 ... 8]), ["seed", "base_filters", "fine_tune_lr", "status"], "one column per varied axis, after seed")
        let rows = lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
        XCTAssertEqual(rows.count, 6, "2 baselines + 2 x 2 compress jobs")
        for row in rows {
            XCTAssertTrue(row["job"]!.contains("bf\(row["base_filters"]!)-"), "\(row)")
            if row["kind"] == "compress" { XCTAssertTrue(row["job"]!.contains("ftlr\(row["fine_tune_lr"]!)-"), "\(row)") }
            else { XCTAssertEqual(row["fine_tune_lr"], "", "a baseline has no fine-tune lr") }
        }

        let md = try String(contentsOfFile: dir + "/state/report/report.md", encoding: .utf8)
        let html = try Data(contentsOf: URL(fileURLWithPath: dir + "/state/report/report.html"))
        XCTAssertTrue(md.contains("## By baseline configuration"), md)
        XCTAssertTrue(md.contains("### base_filters=3") && md.contains("### base_filters=4"), md)
        XCTAssertTrue(md.contains("| Baseline configuration | Baseline Dice | Most compressive kept |"), md)
        // Rows that differ only in a grid axis never read the same: a column per varied axis in
        // every table, and the axes in every label (legends, recommendation, group summary).
        XCTAssertTrue(md.contains("| Method | Rank/Tau | base_filters | fine_tune_lr | Before FT |"), md)
        for bf in [3, 4] {
            for lr in ["0.0001", "0.0002"] {
                XCTAssertTrue(md.contains("| SVD | r=2 | \(bf) | \(lr) |"), "bf \(bf) lr \(lr)\n" + md)
            }
        }
        let htmlText = String(decoding: html, as: UTF8.self)
        XCTAssertTrue(htmlText.contains("<th>fine_tune_lr</th>") || htmlText.contains(">fine_tune_lr<"), "the HTML tables have the axis columns")
        XCTAssertTrue(htmlText.contains("SVD r=2 (base_filters=4, fine_tune_lr=0.0002)"), "labels in the HTML carry the axes")
        let check = XMLCheck.parse(html)
        XCTAssertNil(check.error)
        XCTAssertTrue(Set(check.ids).isSuperset(of: ["pareto", "pareto-1", "pareto-2"]), "\(check.ids)")
    }
}
