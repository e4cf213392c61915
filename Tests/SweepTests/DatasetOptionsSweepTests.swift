import Basics
import Foundation
import Imaging
import XCTest
@testable import Sweep

/// A sweep file's `dataset:` options reach every train and compress job spec unchanged, so each
/// worker pairs and binarises the shipped folder as the coordinator's host would.
final class DatasetOptionsSweepTests: XCTestCase {
    func testDatasetOptionsTravelInJobSpecs() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rs-dsopt-\(UUID())").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let s = try SweepSpec.parse(yaml: """
            data_root: \(root)
            dataset: {images_dir: scans, masks_dir: labels, mask_suffix: _gt, mask_threshold: 90, skip_unmatched: true}
            compression: {svd_ranks: [4], arsvd_taus: []}
            """, file: "s.yaml")
        let expected = DatasetOptions(imagesDir: "scans", masksDir: "labels", maskSuffix: "_gt", maskThreshold: 90, skipUnmatched: true)
        XCTAssertEqual(s.datasetOptions, expected)
        let jobs = try JobGraph.plan(s) { _, _ in ("hash", 1) }
        let train = try JSONDecoder().decode(TrainJobSpec.self, from: Data(jobs[0].spec.utf8))
        XCTAssertEqual(train.data.datasetOptions, expected)
        let compress = try JSONDecoder().decode(CompressJobSpec.self, from: Data(jobs[1].spec.utf8))
        XCTAssertEqual(compress.data.datasetOptions, expected)

        // A spec written before the field existed still reads; bad options name the file and key.
        XCTAssertNil(try JSONDecoder().decode(DataSpec.self, from: Data(#"{"datasetDir": "dataset"}"#.utf8)).datasetOptions)
        XCTAssertThrowsError(try SweepSpec.parse(yaml: "data_root: \(root)\ndataset: {mask_threshold: 300}\n", file: "s.yaml")) {
            XCTAssertTrue("\($0)".contains("s.yaml") && "\($0)".contains("--mask-threshold must be in 0...254"), "\($0)")
        }
    }
}
