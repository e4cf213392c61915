import Basics
import XCTest
@testable import Sweep

/// `ranksweep run`'s flags over a sweep file (`SweepSpec.applying`): a flag replaces the setting
/// and drops that setting's axis; nothing given changes nothing.
final class SweepOverridesTests: XCTestCase {
    func testFlagsReplaceSettingsAndDropTheirAxes() throws {
        let file = try SweepSpec.parse(yaml: """
            image_size: 32
            baseline: {epochs: [2, 4], batch_size: 4}
            compression: {svd_ranks: [2, 4]}
            """, file: "s.yaml")
        XCTAssertEqual(file.applying(SweepOverrides()), file)
        XCTAssertNil(SweepOverrides().firstSweepChangingFlag)
        var o = SweepOverrides()
        (o.epochs, o.svdRanks, o.dataRoot, o.seeds, o.jobTimeout) = (3, [8], "/data/hela", [1, 2], 60)
        let s = file.applying(o)
        XCTAssertEqual(s.training.epochs, 3)
        XCTAssertNil(s.axes.epochs, "--epochs fixes the epochs: no epochs axis left")
        XCTAssertEqual(s.svdRanks, [8])
        XCTAssertEqual(s.dataRoot, "/data/hela")
        XCTAssertNil(s.synthetic, "a data folder replaces the synthetic set")
        XCTAssertEqual(s.seeds, [1, 2])
        XCTAssertEqual(s.jobTimeout, 60)
        XCTAssertEqual(s.training.batchSize, 4, "untouched")
        XCTAssertEqual(s.imageSize, 32, "untouched")
        XCTAssertEqual(o.firstSweepChangingFlag, "--svd-ranks")
        var trainOnly = SweepOverrides()
        trainOnly.trainOnly = true
        XCTAssertEqual(file.applying(trainOnly).svdRanks, [])
        var timeoutOnly = SweepOverrides()
        timeoutOnly.jobTimeout = 5
        XCTAssertNil(timeoutOnly.firstSweepChangingFlag, "a timeout governs attempts, not which jobs there are")
        XCTAssertNil(o.problem)
        var bad = SweepOverrides()
        bad.depth = 9
        XCTAssertEqual(bad.problem, "--depth must be in 1...8")
        (bad.depth, bad.trainOnly, bad.baselineModel) = (nil, true, "/m.safetensors")
        XCTAssertEqual(bad.problem, "--train-only trains baselines; --model gives one and skips training")
    }
}
