import Basics
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import Reports

final class ReportUnitTests: XCTestCase {
    func testParetoFront() {
        let points: [(x: Double, y: Double)] = [(10, 0.9), (20, 0.85), (20, 0.8), (30, 0.86), (50, 0.5), (40, 0.4)]
        // (20, 0.85) is beaten by (30, 0.86); (20, 0.8) too; (40, 0.4) by (50, 0.5).
        XCTAssertEqual(Pareto.front(points), [0, 3, 4])
        XCTAssertEqual(Pareto.front([]), [])
    }

    func row(_ method: String, rank: Int? = nil, tau: Double? = nil, reduction: Double, dice: Double, recovery: Double,
             status: String = "done") -> ResultRow {
        var r = ResultRow(job: "\(method)-\(rank ?? 0)-\(tau ?? 0)", kind: "compress", method: method, rank: rank, tau: tau, seed: 1,
                          status: status, attempts: 1)
        if status == "done" {
            r.parameterReductionPercent = reduction; r.diceAfterFineTune = dice; r.diceRecoveryPercent = recovery
            r.flopReductionPercent = reduction / 2; r.speedUp = 1.2
        }
        return r
    }

    /// The largest reduction with recovery >= 95% wins; best Dice per level; thresholds stated.
    func testRecommendationUsesStatedThresholds() {
        var baseline = ResultRow(job: "train-s1", kind: "train", method: "baseline", seed: 1, status: "done", attempts: 1)
        baseline.diceAfterFineTune = 0.8
        let rows = [baseline,
                    row("svd", rank: 8, reduction: 40, dice: 0.79, recovery: 98.75),
                    row("arsvd", tau: 0.9, reduction: 55, dice: 0.77, recovery: 96.25),
                    row("svd", rank: 2, reduction: 80, dice: 0.70, recovery: 87.5),
                    row("arsvd", tau: 0.8, reduction: 0, dice: 0, recovery: 0, status: "failed")]
        let rec = Recommendation(rows: rows)
        XCTAssertEqual(rec.recommended?.label, "ARSVD tau=0.9")
        XCTAssertEqual(rec.bestPerLevel.map(\.range), ["25–50%", "50–75%", "75–100%"])
        XCTAssertEqual(rec.bestPerLevel.map(\.best.label), ["SVD r=8", "ARSVD tau=0.9", "SVD r=2"])
        XCTAssertEqual(rec.frontCounts, ["svd": 2, "arsvd": 1])
        XCTAssertTrue(rec.paragraph.contains("at least 95% of the baseline's"), rec.paragraph)
        XCTAssertTrue(rec.paragraph.contains("Recommended: ARSVD tau=0.9"), rec.paragraph)
        XCTAssertTrue(rec.paragraph.contains("1 without a result (1 failed)"), rec.paragraph)
        XCTAssertFalse(rec.paragraph.contains("Caution"), "baseline Dice 0.8 is not weak")

        let none = Recommendation(rows: [baseline, row("svd", rank: 2, reduction: 80, dice: 0.6, recovery: 75)])
        XCTAssertNil(none.recommended)
        XCTAssertTrue(none.paragraph.contains("No setting keeps 95%"), none.paragraph)
    }

    func testCSVQuotingAndNumbers() {
        XCTAssertEqual(CSVTable.field("a,b"), "\"a,b\"")
        XCTAssertEqual(CSVTable.field("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(ResultsTable.number(0.1 + 0.2), "0.30000000000000004", "round-trip exact")
        XCTAssertEqual(ResultsTable.number(.nan), "nan")
        var r = ResultRow(job: "j", kind: "compress", method: "svd", rank: 4, seed: 1, status: "failed", attempts: 2)
        r.failureReason = "boom, \"twice\"\nbye"
        let parsed = parseCSV(ResultsTable.csv([r]))
        XCTAssertEqual(parsed.count, 1)
        XCTAssertEqual(parsed[0]["failure_reason"], r.failureReason)
        XCTAssertEqual(parsed[0]["dice_final"], "")
        XCTAssertEqual(parsed[0].count, ResultsTable.csvColumns.count)
    }

    func testScaleTicksAreRound() {
        let s = LinearScale(lower: 0, upper: 1, from: 0, to: 100)
        XCTAssertEqual(s.ticks(5), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map { $0 }, accuracy: 1e-9)
        XCTAssertEqual(s(0.5), 50)
        let (lo, hi) = LinearScale.domain([3.2, 47.9])
        XCTAssertLessThanOrEqual(lo, 3.2); XCTAssertGreaterThanOrEqual(hi, 47.9)
        XCTAssertEqual(LinearScale.label(0.25, step: 0.25), "0.25")
        XCTAssertEqual(LinearScale.label(20, step: 10), "20")
    }

    func testSVGIsEscapedAndWellFormed() {
        let doc = SVGDocument(width: 100, height: 50, title: "a < b & \"c\"")
        doc.text(1, 2, "tau <= 0.9 & r > 2")
        doc.marker(.triangle, 10, 10, fill: "#000", tooltip: "x<y")
        let check = XMLCheck.parse(Data(doc.render().utf8))
        XCTAssertNil(check.error)
        XCTAssertEqual(check.elements.first, "svg")
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}

/// Every method has its own colour and marker in the Pareto chart, and each method's fronts
/// (parameters and FLOPs) are drawn in its colour.
final class MethodStyleTests: XCTestCase {
    func testEachMethodHasItsOwnColourAndShape() {
        XCTAssertEqual(Set(Palette.methods.map(\.colour)).count, 6)
        XCTAssertEqual(Palette.methods.map(\.name), ["svd", "arsvd", "tucker2", "spatial-svd", "budget", "uniform-svd"])
        var baseline = ResultRow(job: "train-s1", kind: "train", method: "baseline", seed: 1, status: "done", attempts: 1)
        baseline.diceAfterFineTune = 0.9
        var rows = [baseline]
        for (i, method) in ["svd", "arsvd", "tucker2", "spatial-svd"].enumerated() {
            var r = ResultRow(job: "\(method)-r4-s1", kind: "compress", method: method, rank: 4, tau: nil, seed: 1, status: "done", attempts: 1)
            r.parameterReductionPercent = 20 + Double(i) * 10; r.flopReductionPercent = 10 + Double(i) * 10; r.diceAfterFineTune = 0.85
            rows.append(r)
        }
        var auto = ResultRow(job: "tucker2-rauto-s1", kind: "compress", method: "tucker2", rank: nil, tau: nil, seed: 1, status: "done", attempts: 1)
        auto.rankText = "auto"
        XCTAssertEqual(auto.label, "TUCKER2 r=auto")
        // A budget sweep's two models per budget, labelled by their plan.
        var budgetRows: [ResultRow] = []
        for (i, method) in ["budget", "uniform-svd"].enumerated() {
            var r = ResultRow(job: "\(method)-p0.2-s1", kind: "compress", method: method, rank: nil, tau: nil, seed: 1, status: "done", attempts: 1)
            r.plan = "params 20%"
            r.parameterReductionPercent = 15 + Double(i) * 10; r.flopReductionPercent = 5 + Double(i) * 10; r.diceAfterFineTune = 0.87 - 0.01 * Double(i)
            budgetRows.append(r)
        }
        XCTAssertEqual(budgetRows[0].label, "BUDGET params 20%")
        let pareto = Charts.pareto(rows + budgetRows).svg
        for style in Palette.methods { XCTAssertTrue(pareto.contains(style.colour), style.name) }
        XCTAssertTrue(pareto.contains("Tucker-2") && pareto.contains("spatial SVD"))
        let fronts = Charts.methodFronts(rows + budgetRows).svg
        XCTAssertTrue(fronts.contains("1c. Pareto fronts per method: FLOPs"))
        XCTAssertTrue(fronts.contains("<polygon"), "diamonds and triangles are drawn")
        for style in Palette.methods { XCTAssertTrue(fronts.contains("stroke=\"\(style.colour)\"") || fronts.contains("fill=\"\(style.colour)\""), style.name) }
        // The recommendation counts every method's share of the front (here spatial SVD's point dominates).
        let paragraph = Recommendation(rows: rows).paragraph
        XCTAssertTrue(paragraph.contains("0 SVD, 0 ARSVD, 0 Tucker-2 and 1 spatial-SVD setting(s); spatial-SVD holds more of the Pareto front"), paragraph)
        // A budget sweep alone: its two kinds of model, not SVD and ARSVD it did not run.
        let budgetParagraph = Recommendation(rows: [baseline] + budgetRows).paragraph
        XCTAssertTrue(budgetParagraph.contains("1 budget-allocation and 1 uniform-SVD-at-budget setting(s)"), budgetParagraph)
    }
}
