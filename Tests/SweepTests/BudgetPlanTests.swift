import Basics
import Foundation
import XCTest
@testable import Sweep

/// `budget:` in a sweep file, and the jobs it plans: sensitivity per (method, layer), an
/// allocation per budget, and per budget the allocated and the uniform-SVD compress jobs.
final class BudgetPlanTests: XCTestCase {
    func testABudgetPlansSensitivityAllocationAndBothModels() throws {
        let spec = try SweepSpec.parse(yaml: """
            synthetic: {count: 24, size: 32, seed: 3}
            image_size: 32
            model: {base_filters: 4, depth: 2}
            budget: {params: [0.2, 0.35]}
            methods: [svd, tucker2]
            candidates: 5
            fine_tune: {epochs: 2}
            """, file: "b.yaml")
        let budget = try XCTUnwrap(spec.budget)
        XCTAssertEqual(budget.measure, "params")
        XCTAssertEqual(budget.fractions, [0.2, 0.35])
        XCTAssertEqual(budget.methods, ["svd", "tucker2"])
        XCTAssertEqual(budget.candidates, 5)
        XCTAssertTrue(spec.svdRanks.isEmpty && spec.arsvdTaus.isEmpty, "the budget replaces the default grid")

        let jobs = try JobGraph.plan(spec) { _, _ in ("h", 1) }
        let byKind = Dictionary(grouping: jobs, by: \.kind)
        XCTAssertEqual(byKind["train"]?.count, 1)
        // Depth 2: 4 * 2 + 2 = 10 convolutions before the head, per method.
        let sensitivity = try XCTUnwrap(byKind["sensitivity"])
        XCTAssertEqual(sensitivity.count, 20)
        XCTAssertEqual(sensitivity.first?.id, "sens-svd-l0-s42")
        XCTAssertTrue(sensitivity.allSatisfy { $0.deps == ["train-s42"] && $0.inputs.contains { $0.name == JobFiles.model && $0.fromJob == "train-s42" } })
        let specs = try sensitivity.map { try JSONDecoder().decode(SensitivityJobSpec.self, from: Data($0.spec.utf8)) }
        XCTAssertEqual(Set(specs.map { "\($0.method)-\($0.slots)" }).count, 20, "every (method, layer) once")
        XCTAssertTrue(specs.allSatisfy { $0.candidates == 5 && $0.slots.count == 1 })

        let allocations = try XCTUnwrap(byKind["allocate"])
        XCTAssertEqual(allocations.map(\.id), ["allocate-p0.2-s42", "allocate-p0.35-s42"])
        for a in allocations {
            XCTAssertEqual(Set(a.deps), Set(["train-s42"] + sensitivity.map(\.id)), "allocation waits for the whole table")
            XCTAssertEqual(a.inputs.filter { $0.fromJob?.hasPrefix("sens-") == true }.count, 20)
            let s = try JSONDecoder().decode(AllocationJobSpec.self, from: Data(a.spec.utf8))
            XCTAssertEqual(s.pieces.count, 20)
            XCTAssertNil(s.reusedTable)
        }
        let compress = try XCTUnwrap(byKind["compress"])
        XCTAssertEqual(compress.map(\.id).sorted(), ["budget-p0.2-s42", "budget-p0.35-s42", "uniform-svd-p0.2-s42", "uniform-svd-p0.35-s42"])
        for c in compress {
            let plan = try XCTUnwrap(c.inputs.first { $0.name == JobFiles.plan })
            let fraction = c.id.contains("p0.2-") ? "0.2" : "0.35"
            XCTAssertEqual(plan.fromJob, "allocate-p\(fraction)-s42")
            XCTAssertEqual(plan.file, c.id.hasPrefix("budget-") ? JobFiles.allocationPlan : JobFiles.uniformSVDPlan)
            XCTAssertTrue(c.deps.contains("allocate-p\(fraction)-s42"))
            let s = try JSONDecoder().decode(CompressJobSpec.self, from: Data(c.spec.utf8))
            XCTAssertEqual(s.method, "allocated")
            XCTAssertEqual(s.fineTune.epochs, 2)
        }
    }

    func testAReusedTableReplacesTheSensitivityJobs() throws {
        let dir = Harness.tempDir("budget-reuse")
        Harness.write("{}", dir + "/sensitivity.json")
        Harness.write("model", dir + "/base.safetensors")
        Harness.write("""
            baseline_model: base.safetensors
            synthetic: {count: 24, size: 32, seed: 3}
            budget: {flops: 0.5, methods: [svd], candidates: 3, sensitivity_table: sensitivity.json}
            """, dir + "/b.yaml")
        let spec = try SweepSpec.load(path: dir + "/b.yaml")
        XCTAssertEqual(spec.budget?.sensitivityTable, dir + "/sensitivity.json", "relative to the sweep file")
        var imported: [String] = []
        let jobs = try JobGraph.plan(spec) { path, _ in imported.append(path); return ("hash-" + (path as NSString).lastPathComponent, 1) }
        XCTAssertTrue(imported.contains(dir + "/sensitivity.json"))
        XCTAssertFalse(jobs.contains { $0.kind == "sensitivity" })
        let allocate = try XCTUnwrap(jobs.first { $0.kind == "allocate" })
        XCTAssertEqual(allocate.id, "allocate-f0.5-s42")
        XCTAssertEqual(allocate.deps, [], "a given baseline and a given table: nothing to wait for")
        XCTAssertTrue(allocate.inputs.contains { $0.name == JobFiles.reusedSensitivityTable && $0.hash == "hash-sensitivity.json" })
        XCTAssertEqual(jobs.filter { $0.kind == "compress" }.count, 2)
    }

    func testBadBudgetKeysNameTheKeyAndTheLine() {
        let cases: [(String, String)] = [
            ("budget: {params: 1.5}\n", "budget.params (line 1) must be a fraction of the baseline in (0, 1]"),
            ("budget: {params: 0.2, flops: 0.3}\n", "gives params and flops: one measure per sweep"),
            ("budget: {methods: [svd]}\n", "needs one of params, flops or latency"),
            ("budget: {params: 0.2}\nmethods: [arsvd]\n", "a budget allocates over svd, tucker2, spatial-svd"),
            ("methods: [svd]\n", "methods (line 1) belongs to a budget"),
            ("budget: {params: 0.2}\ncandidates: 0\n", "candidates (line 2) must be at least 1"),
            ("budget: {params: 0.2, candidates: 4}\ncandidates: 4\n", "is given twice"),
            ("budget: {latency: 0.5}\n", "needs a latency profile"),
            ("budget: {params: [0.2, 0.2]}\n", "lists 0.2 twice"),
            ("budget: {params: 0.2, ranks: 3}\n", "unknown key budget.ranks"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try SweepSpec.parse(yaml: yaml, file: "b.yaml"), yaml) {
                XCTAssertTrue("\($0)".contains(expected), "\(yaml): \($0)")
                XCTAssertTrue("\($0)".contains("b.yaml"), "names the file: \($0)")
            }
        }
    }
}
