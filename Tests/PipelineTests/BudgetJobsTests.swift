import Basics
import Compression
import Engine
import Foundation
import Imaging
import ModelInterop
import XCTest
@testable import Pipeline

/// The budget sweep's two job bodies as functions: a model that records no training settings (as a
/// Keras import) is measured on the data given and allocated from its table's image size.
final class BudgetJobsTests: XCTestCase {
    func testAModelWithoutTrainingSettingsIsMeasuredAndAllocated() throws {
        let dir = NSTemporaryDirectory() + "budget-jobs-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try SyntheticDataset.write(to: dir + "/data", count: 20, size: 32, seed: 4)
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 3)
        try OutputFiles.makeDirectory(dir)
        // Only where it came from and its input size, as `import-keras` writes.
        try OutputFiles.saveModel(model, to: dir + "/keras.safetensors", metadata: [ModelFile.sourceKey: "keras test", ModelFile.imageSizeKey: "32"])

        let data = DataSource(root: dir + "/data")
        var pieces: [String] = []
        for (i, slots) in [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]].enumerated() {
            let spec = SensitivitySpec(method: "svd", slots: slots, candidates: 3, data: data, batchSize: 4)
            let table = try BudgetJobs.sensitivity(spec, baselinePath: dir + "/keras.safetensors", baselineSHA256: "abc", outDir: dir + "/sens\(i)")
            XCTAssertEqual(table.imageSize, 32)
            XCTAssertEqual(table.layers.map(\.slot), slots)
            pieces.append(dir + "/sens\(i)/" + BudgetJobs.tableFile)
        }
        let result = try BudgetJobs.allocate(AllocationSpec(measure: .params, fraction: 0.5, methods: ["svd"]), baselinePath: dir + "/keras.safetensors",
                                             baselineSHA256: "abc", tables: pieces, reusedTable: false, outDir: dir + "/alloc")
        XCTAssertLessThanOrEqual(Double(result.parameters), 0.5 * Double(model.parameterCount))
        XCTAssertEqual(result.tableLayers, 10)
        let plan = try OutputFiles.readJSON(LayerPlan.self, from: dir + "/alloc/" + BudgetJobs.planFile)
        XCTAssertEqual(plan, result.answer.plan)
        let uniform = try OutputFiles.readJSON(LayerPlan.self, from: dir + "/alloc/" + BudgetJobs.uniformPlanFile)
        XCTAssertTrue(uniform.entries.allSatisfy { $0.method == .svd(rank: result.uniformSVDRank!) })
        XCTAssertEqual(try OutputFiles.readJSON(SensitivityTable.self, from: dir + "/alloc/" + BudgetJobs.tableFile).layers.count, 10)

        // Another baseline's hash, or a method the table lacks: refused, with what was wrong.
        XCTAssertThrowsError(try BudgetJobs.allocate(AllocationSpec(measure: .params, fraction: 0.5, methods: ["svd"]), baselinePath: dir + "/keras.safetensors",
                                                     baselineSHA256: "def", tables: pieces, reusedTable: true, outDir: dir + "/alloc2")) {
            XCTAssertTrue("\($0)".contains("another baseline"), "\($0)")
        }
        XCTAssertThrowsError(try BudgetJobs.allocate(AllocationSpec(measure: .params, fraction: 0.5, methods: ["svd", "tucker2"]), baselinePath: dir + "/keras.safetensors",
                                                     baselineSHA256: "abc", tables: pieces, reusedTable: false, outDir: dir + "/alloc3")) {
            XCTAssertTrue("\($0)".contains("no measurements for tucker2"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/alloc2"), "nothing written for a refused table")
    }
}
