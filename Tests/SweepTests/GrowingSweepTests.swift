import Foundation
import XCTest
@testable import Sweep

/// Sweeps that grow: a sweep file given to a state dir that already holds a sweep keeps every job
/// it shares, adds only the new ones, and refuses (or, allowed, runs beside) changed settings.
final class GrowingSweepTests: XCTestCase {
    static let base = """
        synthetic: {count: 24, size: 32, seed: 3}
        image_size: 32
        model: {base_filters: 4, depth: 2, channels: 3}
        baseline: {epochs: 2, batch_size: 4, lr: 0.003, patience: 5, lr_patience: 3, augment: true}
        fine_tune: {epochs: 1, lr: 0.0001}
        seeds: [1]
        max_attempts: 2

        """

    func plan(_ yaml: String) throws -> [PlannedJob] {
        try JobGraph.plan(try SweepSpec.parse(yaml: yaml, file: "s.yaml")) { _, _ in ("", 0) }
    }

    func testMergeKeepsSharedJobsAddsNewOnesAndNamesChanges() throws {
        let old = try plan(Self.base + "compression: {svd_ranks: [2], arsvd_taus: []}\n")
        // A second fine-tune lr renames the old compress job (svd-r2-s1 -> svd-r2-ftlr0.0001-s1): it is still kept.
        let grown = try plan(Self.base.replacingOccurrences(of: "lr: 0.0001}", with: "lr: [0.0001, 0.0003]}")
                             + "compression: {svd_ranks: [2, 3], arsvd_taus: []}\n")
        let m = PlanMerge.merge(existing: old, planned: grown, allowChanges: false)
        XCTAssertEqual(m.changes, [])
        XCTAssertEqual(m.kept, ["train-s1": "train-s1", "svd-r2-ftlr0.0001-s1": "svd-r2-s1"])
        XCTAssertEqual(m.added.map(\.id), ["svd-r3-ftlr0.0001-s1", "svd-r2-ftlr0.0003-s1", "svd-r3-ftlr0.0003-s1"])
        XCTAssertTrue(m.added.allSatisfy { $0.deps == ["train-s1"] })

        // A changed baseline setting: refused, naming the setting and every job it invalidates.
        let changed = try plan(Self.base.replacingOccurrences(of: "epochs: 2,", with: "epochs: 3,") + "compression: {svd_ranks: [2], arsvd_taus: []}\n")
        let refused = PlanMerge.merge(existing: old, planned: changed, allowChanges: false)
        XCTAssertEqual(refused.added, [])
        XCTAssertEqual(refused.changes.map(\.job), ["train-s1", "svd-r2-s1"])
        XCTAssertEqual(refused.changes[0].what, ["training.epochs: 2 -> 3"])
        XCTAssertEqual(refused.changes[1].what, ["its dependency train-s1 changes"])
        let text = refused.refusal(stateDir: "D", source: "s.yaml")
        XCTAssertTrue(text.contains("invalidate 2 job(s): train-s1, svd-r2-s1"), text)
        XCTAssertTrue(text.contains("--allow-changes"), text)

        // Allowed: the changed jobs run beside the old ones under new ids, wired to each other.
        let allowed = PlanMerge.merge(existing: old, planned: changed, allowChanges: true)
        XCTAssertEqual(allowed.added.map(\.id), ["train-s1-v2", "svd-r2-s1-v2"])
        XCTAssertEqual(allowed.added[1].deps, ["train-s1-v2"])
        XCTAssertEqual(allowed.added[1].inputs.first { $0.fromJob != nil }?.fromJob, "train-s1-v2")
        let spec = try JSONDecoder().decode(CompressJobSpec.self, from: Data(allowed.added[1].spec.utf8))
        XCTAssertEqual(spec.baselineJob, "train-s1-v2")
        XCTAssertEqual(spec.job, "svd-r2-s1-v2")
        let train = try JSONDecoder().decode(TrainJobSpec.self, from: Data(allowed.added[0].spec.utf8))
        XCTAssertEqual(train.training.epochs, 3)
        XCTAssertEqual(train.training.learningRate, Float(0.003), "the rewritten spec keeps every value")
        // Given again, the same file adds nothing more.
        let again = PlanMerge.merge(existing: old + allowed.added, planned: changed, allowChanges: true)
        XCTAssertEqual(again.added, [])
    }

    /// Real coordinator and worker processes: a finished sweep grows by a rank and a fine-tune lr;
    /// only the new jobs run, the finished ones keep their results. A changed epoch count is refused
    /// with the diff, and runs beside the old jobs with --allow-changes.
    func testGrowingAFinishedSweepRunsOnlyTheNewJobs() throws {
        let c = Cluster("grow", sweep: Self.base + "compression: {svd_ranks: [2], arsvd_taus: []}\n")
        let first = try c.startCoordinator()
        try c.startWorker("a")
        XCTAssertEqual(first.wait(120), 0, first.output)
        let before = try c.store().results()
        XCTAssertEqual(before.map(\.job).sorted(), ["svd-r2-s1", "train-s1"])

        Harness.write(Self.base.replacingOccurrences(of: "lr: 0.0001}", with: "lr: [0.0001, 0.0003]}")
                      + "compression: {svd_ranks: [2, 3], arsvd_taus: []}\n", c.dir + "/sweep.yaml")
        let second = try c.startCoordinator(tag: "-2")
        try c.startWorker("b")
        XCTAssertEqual(second.wait(120), 0, second.output)
        XCTAssertTrue(second.output.contains("2 job(s) kept, 3 new: svd-r3-ftlr0.0001-s1, svd-r2-ftlr0.0003-s1, svd-r3-ftlr0.0003-s1"), second.output)
        let after = try c.store().results()
        XCTAssertEqual(after.count, 5)
        for r in before { XCTAssertEqual(after.first { $0.job == r.job }, r, "\(r.job) kept its result, not run again") }
        XCTAssertEqual(try c.store().attempts().filter { $0.job == "train-s1" }.count, 1)

        let jobsBefore = c.count("SELECT COUNT(*) FROM jobs")
        Harness.write(Self.base.replacingOccurrences(of: "epochs: 2,", with: "epochs: 3,")
                      + "compression: {svd_ranks: [2], arsvd_taus: []}\n", c.dir + "/sweep.yaml")
        let refused = try Proc(["coordinator", "--sweep", c.dir + "/sweep.yaml", "--bind", c.endpoint, "--state-dir", c.stateDir],
                               log: c.dir + "/refused.log")
        XCTAssertNotEqual(refused.wait(30), 0)
        XCTAssertTrue(refused.output.contains("train-s1: training.epochs: 2 -> 3"), refused.output)
        XCTAssertTrue(refused.output.contains("svd-r2-s1: its dependency train-s1 changes"), refused.output)
        XCTAssertEqual(c.count("SELECT COUNT(*) FROM jobs"), jobsBefore, "nothing added when refused")

        let allowed = try c.startCoordinator(extra: ["--allow-changes"], tag: "-3")
        try c.startWorker("c")
        XCTAssertEqual(allowed.wait(120), 0, allowed.output)
        let final = try c.store().results()
        XCTAssertEqual(Set(final.map(\.job)), Set(after.map(\.job)).union(["train-s1-v2", "svd-r2-s1-v2"]))
        XCTAssertEqual(final.first { $0.job == "train-s1" }, before.first { $0.job == "train-s1" }, "the old baseline stays beside the new one")
    }
}
