import Foundation
import XCTest
@testable import Sweep

/// Tucker-2 and spatial-SVD keys in sweep files: job ids and specs, bad values named by key and
/// line, and targeted searches for every method.
final class DecompositionSweepKeysTests: XCTestCase {
    func testTucker2AndSpatialSVDKeysMakeTheirJobs() throws {
        let s = try SweepSpec.parse(yaml: """
            synthetic: {count: 16, size: 32, seed: 3}
            compression: {tucker2_ranks: [16, 0.25, auto], tucker2_taus: [0.9], spatial_svd_ranks: [8], spatial_svd_taus: [0.95]}
            seeds: [42]
            """, file: "s.yaml")
        XCTAssertEqual(s.tucker2Ranks, ["16", "0.25", "auto"])
        let jobs = try JobGraph.plan(s) { _, _ in ("", 0) }
        // Only the new methods' keys given: the default SVD/ARSVD grid is not added.
        XCTAssertEqual(jobs.map(\.id), ["train-s42", "tucker2-r16-s42", "tucker2-r0.25-s42", "tucker2-rauto-s42", "tucker2-t0.9-s42",
                                        "spatial-svd-r8-s42", "spatial-svd-t0.95-s42"])
        let specs = try jobs.dropFirst().map { try JSONDecoder().decode(CompressJobSpec.self, from: Data($0.spec.utf8)) }
        XCTAssertEqual(specs.map(\.method), ["tucker2", "tucker2", "tucker2", "tucker2", "spatial-svd", "spatial-svd"])
        XCTAssertEqual(specs.map(\.rank), [16, nil, nil, nil, 8, nil])
        XCTAssertEqual(specs.map(\.rankText), [nil, "0.25", "auto", nil, nil, nil])
        XCTAssertEqual(specs.map(\.tau), [nil, nil, nil, 0.9, nil, 0.95])

        let both = try SweepSpec.parse(yaml: "compression: {svd_ranks: [4], arsvd_taus: [], spatial_svd_ranks: [2]}\n", file: "s.yaml")
        XCTAssertEqual(try JobGraph.plan(both) { _, _ in ("", 0) }.map(\.id), ["train-s42", "svd-r4-s42", "spatial-svd-r2-s42"])
    }

    func testBadValuesNameKeyAndLine() {
        let cases: [(String, String)] = [
            ("compression:\n  tucker2_ranks: [4, 0]\n", "s.yaml: compression.tucker2_ranks (line 2) values must be positive integers, fractions in (0, 1) or auto, got \"0\""),
            ("compression: {tucker2_ranks: [fast]}\n", "compression.tucker2_ranks (line 1) values must be positive integers"),
            ("compression: {spatial_svd_ranks: [1.5]}\n", "compression.spatial_svd_ranks (line 1)"),
            ("compression: {spatial_svd_ranks: [8, 8]}\n", "lists 8 twice"),
            ("compression: {tucker2_taus: [1.5]}\n", "compression.tucker2_taus (line 1) values must be in (0.0, 1.0]"),
            ("compression: {spatial_svd_taus: 0.9}\n", "compression.spatial_svd_taus (line 1) must be a list"),
            ("compression: {tucker_ranks: [4]}\n", "unknown key compression.tucker_ranks"),
            ("target: {recovery: 0.99, method: cp}\n", "target.method (line 1) must be svd, arsvd, tucker2, spatial-svd, both (svd and arsvd) or all, got cp"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try SweepSpec.parse(yaml: yaml, file: "s.yaml"), yaml) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(yaml) -> \(e)")
            }
        }
    }

    func testTargetedSearchForEveryMethod() throws {
        let spec = try SweepSpec.parse(yaml: """
            synthetic: {count: 16, size: 32, seed: 3}
            model: {base_filters: 4, depth: 2}
            compression: {tucker2_ranks: [3]}
            target: {recovery: 0.95, method: all, max_jobs: 5, rank_range: [2, 9], tau_range: [0.8, 0.85]}
            seeds: [1]
            """, file: "t.yaml")
        let (jobs, searches) = try JobGraph.planWithSearches(spec) { _, _ in ("", 0) }
        XCTAssertEqual(searches.map(\.name), ["svd-s1", "arsvd-s1", "tucker2-s1", "spatial-svd-s1"])
        XCTAssertEqual(searches[2].candidates, (2 ... 9).map(Double.init))
        XCTAssertEqual(searches[3].candidates, (2 ... 9).map(Double.init))
        let probe = try searches[2].job(1)
        XCTAssertEqual(probe.id, "tucker2-r3-s1")
        XCTAssertEqual(probe, jobs.first { $0.id == "tucker2-r3-s1" }, "a probe is the grid job of its setting")
        let spatial = try JSONDecoder().decode(CompressJobSpec.self, from: Data(try searches[3].job(0).spec.utf8))
        XCTAssertEqual([spatial.method, spatial.job], ["spatial-svd", "spatial-svd-r2-s1"])
        XCTAssertEqual(spatial.rank, 2)
        XCTAssertEqual(searches[3].index(ofJob: "spatial-svd-r4-s1"), 2)
        XCTAssertNil(searches[0].index(ofJob: "spatial-svd-r4-s1"))
        XCTAssertEqual(TargetSpec.methods("both"), ["svd", "arsvd"])
    }
}
