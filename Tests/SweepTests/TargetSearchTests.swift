import Foundation
import XCTest
@testable import Sweep

/// The bisection of a targeted search, against a known recovery curve: the bracket it returns is
/// the one a full grid shows, within the budget, with parallel probes.
final class TargetSearchTests: XCTestCase {
    /// Runs a search to its end with `parallel` probes in flight, answering from `curve`.
    func run(_ curve: [Double], target: Double, maxJobs: Int, parallel: Int) -> TargetSearch {
        var s = TargetSearch(candidates: curve.indices.map(Double.init), target: target, maxJobs: maxJobs)
        var inFlight: [Int] = []
        var rounds = 0
        while !s.finished {
            inFlight += s.next(count: parallel - inFlight.count)
            XCTAssertLessThanOrEqual(inFlight.count, max(parallel, 1))
            guard !inFlight.isEmpty else { XCTFail("unfinished search with nothing in flight"); break }
            let done = inFlight.removeFirst()
            s.record(done, recovery: curve[done])
            rounds += 1
            if rounds > 1000 { XCTFail("no end"); break }
        }
        XCTAssertLessThanOrEqual(s.jobsUsed, maxJobs)
        return s
    }

    func testBracketMatchesTheGrid() {
        // Recovery rising with rank 0…63; the grid answer for every target.
        let curve = (0 ..< 64).map { 1 - 0.5 * exp(-Double($0) / 8) }
        for target in [0.6, 0.9, 0.97, 0.99] {
            let gridMeet = curve.firstIndex { $0 >= target }!
            for parallel in [1, 3] {
                let s = run(curve, target: target, maxJobs: 12, parallel: parallel)
                let a = s.answer
                XCTAssertTrue(a.tight, "target \(target), parallel \(parallel): \(a)")
                XCTAssertEqual(a.meets, Double(gridMeet), "target \(target), parallel \(parallel)")
                XCTAssertEqual(a.misses, gridMeet > 0 ? Double(gridMeet - 1) : nil)
                XCTAssertGreaterThanOrEqual(a.meetsRecovery!, target)
                if let m = a.missesRecovery { XCTAssertLessThan(m, target) }
            }
        }
    }

    func testParallelProbesSplitTheIntervalAndBudgetBinds() {
        var s = TargetSearch(candidates: (0 ..< 100).map(Double.init), target: 0.5, maxJobs: 4)
        let first = s.next(count: 3)
        XCTAssertEqual(first.count, 3)
        XCTAssertEqual(Set(first).count, 3, "three different points")
        XCTAssertEqual(first.sorted(), [24, 49, 74], "they split (-1, 100) evenly")
        XCTAssertEqual(s.next(count: 5), [87], "the budget of 4 allows one more, in the widest gap")
        XCTAssertEqual(s.next(count: 5), [])
        for i in [24, 49, 74, 87] { s.record(i, recovery: i >= 30 ? 0.9 : 0.1) }
        XCTAssertTrue(s.finished)
        XCTAssertEqual(s.answer.meets, 49)
        XCTAssertEqual(s.answer.misses, 24)
        XCTAssertFalse(s.answer.tight, "the budget ran out before the bracket closed")
    }

    func testNothingMeetsAndFailedProbesAreSkipped() {
        let s = run([0.1, 0.2, 0.3, 0.4], target: 0.9, maxJobs: 8, parallel: 2)
        XCTAssertNil(s.answer.meets, "no setting within the bounds keeps the target")
        XCTAssertEqual(s.answer.misses, 3)
        XCTAssertTrue(s.answer.tight)

        var f = TargetSearch(candidates: [0, 1, 2], target: 0.5, maxJobs: 8)
        XCTAssertEqual(f.next(count: 1), [1])
        f.record(1, recovery: nil)
        let next = f.next(count: 2)
        XCTAssertFalse(next.contains(1), "a failed probe is not tried again")
        XCTAssertEqual(Set(next), [0, 2])
        XCTAssertTrue(f.next(count: 0).isEmpty, "probes are pending: nothing forced")
    }

    func testDefinitionMakesGridCompatibleProbeJobs() throws {
        let spec = try SweepSpec.parse(yaml: """
            synthetic: {count: 16, size: 32, seed: 3}
            model: {base_filters: 4, depth: 2}
            compression: {svd_ranks: [3], arsvd_taus: []}
            target: {recovery: 0.95, method: both, max_jobs: 5, rank_range: [2, 9], tau_range: [0.8, 0.85]}
            seeds: [1]
            """, file: "t.yaml")
        let (jobs, searches) = try JobGraph.planWithSearches(spec) { _, _ in ("", 0) }
        XCTAssertEqual(jobs.map(\.id), ["train-s1", "svd-r3-s1"])
        XCTAssertEqual(searches.map(\.name), ["svd-s1", "arsvd-s1"])
        XCTAssertEqual(searches[0].candidates, (2 ... 9).map(Double.init))
        XCTAssertEqual(searches[1].candidates.count, 51)
        XCTAssertEqual(searches[1].candidates.first, 0.8)
        XCTAssertEqual(searches[1].candidates.last, 0.85)
        let probe = try searches[0].job(1)
        XCTAssertEqual(probe.id, "svd-r3-s1", "a probe has the id of the grid job of its setting")
        XCTAssertEqual(probe, jobs[1], "and is that very job")
        XCTAssertEqual(searches[0].index(ofJob: "svd-r3-s1"), 1)
        XCTAssertNil(searches[0].index(ofJob: "arsvd-t0.8-s1"))
        let tauProbe = try JSONDecoder().decode(CompressJobSpec.self, from: Data(try searches[1].job(10).spec.utf8))
        XCTAssertEqual(tauProbe.tau, 0.81)
        XCTAssertEqual(tauProbe.job, "arsvd-t0.81-s1")

        // `compression: {layer_timing: false}` (an older file's spelling of today's only behaviour) is not a grid.
        let noGrid = try SweepSpec.parse(yaml: """
            synthetic: {count: 16, size: 32, seed: 3}
            compression: {layer_timing: false}
            target: {recovery: 0.95, method: svd}
            seeds: [1]
            """, file: "t.yaml")
        let (noGridJobs, noGridSearches) = try JobGraph.planWithSearches(noGrid) { _, _ in ("", 0) }
        XCTAssertEqual(noGridJobs.map(\.id), ["train-s1"])
        XCTAssertNil(try JSONDecoder().decode(CompressJobSpec.self, from: Data(try noGridSearches[0].job(0).spec.utf8)).latencyProfile)
        XCTAssertThrowsError(try SweepSpec.parse(yaml: "compression: {layer_timing: true}\n", file: "t.yaml")) {
            XCTAssertTrue("\($0)".contains("compression.layer_timing (line 1) was removed") && "\($0)".contains("profile-layers"), "\($0)")
        }

        for (yaml, expected) in [("target: {method: svd}\n", "target (line 1) needs recovery"),
                                 ("target: {recovery: 99}\n", "target.recovery (line 1) is a share of the baseline's Dice"),
                                 ("target: {recovery: 0.9, method: lasso}\n", "must be svd, arsvd, tucker2, spatial-svd, both (svd and arsvd) or all"),
                                 ("target: {recovery: 0.9, rank_range: [9, 2]}\n", "rank_range (line 1) must be [lowest, highest]")] {
            XCTAssertThrowsError(try SweepSpec.parse(yaml: yaml, file: "t.yaml")) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
    }
}

/// Real coordinator and workers on the synthetic set: a targeted search with a small job budget
/// finds a bracket the full grid on the same data agrees with, and the report states it.
final class TargetSearchClusterTests: XCTestCase {
    static let base = """
        synthetic: {count: 24, size: 32, seed: 3}
        image_size: 32
        model: {base_filters: 4, depth: 2, channels: 3}
        baseline: {epochs: 2, batch_size: 4, lr: 0.003, patience: 5, lr_patience: 3, augment: true}
        fine_tune: {epochs: 0}
        seeds: [1]
        max_attempts: 2

        """
    // No fine-tuning (shorter). A 2-epoch baseline makes the recovery curve noisy (not monotone in
    // the rank), so the test checks what bisection promises: the bracket it closes is a neighbouring
    // miss/meet pair by the grid's own numbers.

    func recoveries(_ c: Cluster) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for r in try c.store().results() where r.job.hasPrefix("svd-") {
            out[r.job] = Coordinator.recovery(r.result)
        }
        return out
    }

    func testSearchBracketAgreesWithTheFullGrid() throws {
        let grid = Cluster("grid", sweep: Self.base + "compression: {svd_ranks: [1, 2, 3, 4, 5, 6, 7, 8], arsvd_taus: []}\n")
        let g = try grid.startCoordinator()
        try grid.startWorker("a")
        try grid.startWorker("b")
        XCTAssertEqual(g.wait(300), 0, g.output)
        let gridRecovery = try recoveries(grid)
        XCTAssertEqual(gridRecovery.count, 8)
        let lowest = gridRecovery["svd-r1-s1"]!, highest = gridRecovery["svd-r8-s1"]!
        XCTAssertLessThan(lowest, highest, "rank 8 keeps more than rank 1: \(gridRecovery)")
        // Rank 1 misses and rank 8 meets: a bracket exists between them.
        let target = (lowest + highest) / 2

        // The same job gives the same result in both runs: layer choices never depend on the machine.
        let search = Cluster("search", sweep: Self.base
                             + "target: {recovery: \(target), method: svd, max_jobs: 5, rank_range: [1, 8]}\n")
        let s = try search.startCoordinator()
        try search.startWorker("a")
        try search.startWorker("b")
        XCTAssertEqual(s.wait(300), 0, s.output)
        let probed = try recoveries(search)
        XCTAssertLessThanOrEqual(probed.count, 5, "within the budget")
        XCTAssertLessThan(probed.count, 8, "fewer jobs than the grid")
        for (job, r) in probed { XCTAssertEqual(r, gridRecovery[job]!, accuracy: 1e-9, "\(job): same data, same job, same result") }
        XCTAssertTrue(s.output.contains("target search svd-s1"), s.output)
        // `status` states the search's answer as the report does.
        let status = try Proc(["status", "--state-dir", search.stateDir], log: search.dir + "/status.log")
        XCTAssertEqual(status.wait(20), 0, status.output)
        XCTAssertTrue(status.output.contains("target search SVD (svd-s1): rank "), status.output)

        // The bracket: the stored answer, replayed as the report does.
        let store = try search.store()
        let definitions = try JSONDecoder().decode([SearchDefinition].self, from: Data(try XCTUnwrap(store.meta("target_searches")).utf8))
        XCTAssertEqual(definitions.map(\.name), ["svd-s1"])
        var replay = definitions[0].search
        for (job, r) in probed { replay.record(try XCTUnwrap(definitions[0].index(ofJob: job)), recovery: r) }
        XCTAssertTrue(replay.finished)
        let a = replay.answer
        // The figures for the note: the search's answer beside the full grid.
        print("target recovery \(target): search (\(probed.count) jobs) meets \(a.meets.map { "\($0)" } ?? "-") misses \(a.misses.map { "\($0)" } ?? "-"); grid "
              + (1 ... 8).map { "r\($0)=\(String(format: "%.4f", gridRecovery["svd-r\($0)-s1"]!))" }.joined(separator: " "))
        XCTAssertTrue(a.tight, "\(a)")
        XCTAssertNotNil(a.meets, "\(a)")
        XCTAssertNotNil(a.misses, "\(a)")
        let rank = { (v: Double) in "svd-r\(Int(v))-s1" }
        if let meets = a.meets { XCTAssertGreaterThanOrEqual(gridRecovery[rank(meets)]!, target, "the grid agrees it meets") }
        if let misses = a.misses { XCTAssertLessThan(gridRecovery[rank(misses)]!, target, "the grid agrees it misses") }
        if let meets = a.meets, let misses = a.misses { XCTAssertEqual(meets - misses, 1, "neighbours: the bracket is closed") }
        XCTAssertTrue(a.meets != nil || a.misses != nil)
        let report = try String(contentsOfFile: search.stateDir + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(report.contains("## Targeted search"), report)
        XCTAssertTrue(report.contains("SVD (svd-s1): "), report)
    }
}
