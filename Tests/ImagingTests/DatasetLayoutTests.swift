import Basics
import Engine
import Foundation
import XCTest
@testable import Imaging

/// Small datasets in every recognised layout, written with the real encoders (libpng,
/// libjpeg-turbo, libtiff): every pair loads, masks are the drawn ones, unions are exact.
final class DatasetLayoutTests: XCTestCase {
    var root = ""
    override func setUp() { root = makeTemporaryDirectory("layouts") }
    override func tearDown() { removeDirectory(root) }

    let side = 16

    /// The mask drawn for sample `i`: a rectangle whose place depends on `i`.
    func maskFor(_ i: Int) -> Tensor {
        rectangleMask(h: side, w: side, rows: (i % 5)..<(8 + i % 5), cols: (2 + i % 3)..<(10 + i % 4))
    }

    func imageFor(_ i: Int, c: Int = 3) -> Tensor { smoothImage(h: side, w: side, c: c, phase: i) }

    func allSamples(_ data: LoadedDataset) -> [String: SegmentationSample] {
        Dictionary(uniqueKeysWithValues: (data.train + data.val + data.test).map { ($0.name, $0) })
    }

    func load(_ options: DatasetOptions = DatasetOptions(), channels: Int = 3) throws -> LoadedDataset {
        try DatasetLoader.load(root: root, size: side, channels: channels, options: options)
    }

    /// Kvasir-SEG: JPEG images and JPEG masks; plus the other suffixes and formats on either side.
    func testImagesAndMasksWithAnySuffixAndFormat() throws {
        for i in 0..<4 {
            try writeImage(imageFor(i), to: "\(root)/images/k\(i).jpg")
            try writeImage(maskFor(i), to: "\(root)/masks/k\(i).jpg", quality: 75)
        }
        try writeImage(imageFor(4), to: "\(root)/images/p4.png")
        try writeImage(maskFor(4), to: "\(root)/masks/p4_mask.tif")
        try writeImage(imageFor(5), to: "\(root)/images/t5.TIFF", bitDepth: 16)
        try writeImage(maskFor(5), to: "\(root)/masks/t5_segmentation.png", bitDepth: 16)
        try writeImage(imageFor(6), to: "\(root)/images/s6.jpeg")
        try writeImage(maskFor(6), to: "\(root)/masks/s6_Segmentation.png")
        let data = try load()
        XCTAssertEqual(data.index.kind, .imagesMasks)
        XCTAssertEqual(data.index.layout, .flat)
        XCTAssertEqual(data.index.matching, ["same stem": 4, "stem + _mask": 1, "stem + _segmentation": 1, "stem + _Segmentation": 1])
        let samples = allSamples(data)
        XCTAssertEqual(samples.count, 7)
        for (name, sample) in samples {
            let i = Int(name.dropFirst())!
            XCTAssertEqual(sample.mask.storage, maskFor(i).storage, name)
        }
        // 16-bit TIFF image: exactly its levels.
        let t5 = samples["t5"]!.image.storage
        XCTAssertEqual(t5, imageFor(5).storage.map { Float(($0 * 65535).rounded()) / 65535 })
        XCTAssertTrue(data.warnings.contains("\(root): 4 JPEG masks hold compression artefacts (values between 0 and full scale); thresholded above 127 of 255"), "\(data.warnings)")
        XCTAssertEqual(data.index.files.count, 14)
    }

    func isicFolders(_ part: String, count: Int, from start: Int) throws {
        for i in start..<(start + count) {
            let id = String(format: "ISIC_%07d", i)
            try writeImage(imageFor(i), to: "\(root)/ISIC2018_Task1-2_\(part)_Input/\(id).jpg")
            try writeImage(maskFor(i), to: "\(root)/ISIC2018_Task1_\(part)_GroundTruth/\(id)_segmentation.png")
        }
        touch("\(root)/ISIC2018_Task1-2_\(part)_Input/LICENSE.txt", Data("CC".utf8))
        touch("\(root)/ISIC2018_Task1_\(part)_GroundTruth/ATTRIBUTION.txt", Data("ISIC".utf8))
    }

    func testISIC2018TrainingAloneIsSplitAndWithValidationUsedAsGiven() throws {
        try isicFolders("Training", count: 5, from: 0)
        var data = try load()
        XCTAssertEqual(data.index.kind, .isic2018)
        XCTAssertEqual(data.index.layout, .flat)
        XCTAssertEqual(data.index.matching, ["stem + _segmentation": 5])
        XCTAssertEqual(data.index.ignored.sorted(), ["ISIC2018_Task1-2_Training_Input/LICENSE.txt", "ISIC2018_Task1_Training_GroundTruth/ATTRIBUTION.txt"])
        XCTAssertEqual(allSamples(data)["ISIC_0000003"]!.mask.storage, maskFor(3).storage)

        try isicFolders("Validation", count: 2, from: 10)
        try isicFolders("Test", count: 1, from: 20)
        data = try load()
        XCTAssertEqual(data.index.layout, .presplit)
        XCTAssertEqual([data.train.count, data.val.count, data.test.count], [5, 2, 1])
        XCTAssertEqual(data.val.map(\.name), ["ISIC_0000010", "ISIC_0000011"])
        XCTAssertEqual(data.test[0].mask.storage, maskFor(20).storage)
    }

    func testBUSIInstanceMasksAreUnited() throws {
        var expected: [String: Tensor] = [:]
        for (c, cls) in ["benign", "malignant", "normal"].enumerated() {
            for n in 1...2 {
                let name = "\(cls) (\(n))", i = 3 * c + n
                try writeImage(imageFor(i, c: 1), to: "\(root)/\(cls)/\(name).png")
                try writeImage(maskFor(i), to: "\(root)/\(cls)/\(name)_mask.png")
                expected[name] = maskFor(i)
            }
        }
        // A second lesion in "benign (2)": its own file, united with the first.
        let second = rectangleMask(h: side, w: side, rows: 12..<16, cols: 12..<16)
        try writeImage(second, to: "\(root)/benign/benign (2)_mask_1.png")
        expected["benign (2)"] = DatasetLoader.united(expected["benign (2)"]!, second)
        let data = try load(channels: 1)
        XCTAssertEqual(data.index.kind, .busi)
        XCTAssertEqual(data.index.matching, ["stem + _mask beside the image": 5, "stem + _mask, _mask_N beside the image (instance masks united)": 1])
        let samples = allSamples(data)
        XCTAssertEqual(Set(samples.keys), Set(expected.keys))
        for (name, mask) in expected { XCTAssertEqual(samples[name]!.mask.storage, mask.storage, name) }
        XCTAssertTrue(data.index.files.contains("benign/benign (2)_mask_1.png"))
        XCTAssertEqual(data.index.files.count, 13)
        XCTAssertEqual(try DatasetLoader.colourKind(index: data.index), .gray)
    }

    /// DSB2018: RGBA images, one mask file per nucleus; the union must equal the full mask exactly.
    func testDSB2018UnionEqualsTheSourceMask() throws {
        var truth: [String: Tensor] = [:]
        for s in 0..<4 {
            let id = String(format: "%064lx", 0xabc0 + s)   // DSB IDs are 64 hex digits
            var alpha = imageFor(s, c: 4)
            for p in 0..<(side * side) { alpha.storage[p * 4 + 3] = 1 }
            try writeImage(alpha, to: "\(root)/\(id)/images/\(id).png")
            // Nuclei: rectangles, some overlapping, some touching the border.
            var union = Tensor(shape: [side, side, 1], repeating: 0)
            for n in 0..<(2 + s) {
                let top = (n * 5 + s) % 12, left = (n * 3 + 2 * s) % 12
                let nucleus = rectangleMask(h: side, w: side, rows: top..<min(side, top + 4 + n), cols: left..<min(side, left + 5))
                try writeImage(nucleus, to: "\(root)/\(id)/masks/nucleus\(n).png")
                union = DatasetLoader.united(union, nucleus)
            }
            truth[id] = union
        }
        let data = try load()
        XCTAssertEqual(data.index.kind, .dsb2018)
        XCTAssertEqual(data.index.matching, ["ID/masks/* united": 4])
        let samples = allSamples(data)
        XCTAssertEqual(samples.count, 4)
        for (id, union) in truth {
            XCTAssertEqual(samples[id]!.mask.storage, union.storage, id)
            XCTAssertEqual(samples[id]!.image.shape, [side, side, 3])
        }
        // Every nucleus file ships with the dataset.
        XCTAssertEqual(data.index.files.count, 4 + (2 + 3 + 4 + 5))
        XCTAssertEqual(try DatasetLoader.describe(data.index).masksPerImage, 2...5)
        XCTAssertEqual(try DatasetLoader.describe(data.index).imageKinds.map(\.kind), ["RGBA 8-bit PNG"])
    }

    func testCVCClinicDBTIFFs() throws {
        for i in 1...4 {
            try writeImage(imageFor(i), to: "\(root)/Original/\(i).tif")
            try writeImage(maskFor(i), to: "\(root)/Ground Truth/\(i).tif")
        }
        let data = try load()
        XCTAssertEqual(data.index.kind, .cvcClinicDB)
        XCTAssertEqual(data.index.matching, ["same stem": 4])
        for (name, sample) in allSamples(data) {
            XCTAssertEqual(sample.mask.storage, maskFor(Int(name)!).storage)
            XCTAssertEqual(sample.image.storage, imageFor(Int(name)!).storage.map { Float(($0 * 255).rounded()) / 255 })
        }
        XCTAssertEqual(try DatasetLoader.colourKind(index: data.index), .colour)
        try writeImage(imageFor(5, c: 1), to: "\(root)/Original/5.tif")
        try writeImage(maskFor(5), to: "\(root)/Ground Truth/5.tif")
        XCTAssertEqual(try DatasetLoader.colourKind(index: DatasetLoader.scan(root: root)), .mixed)
    }

    /// train/val/test folders of another layout (DSB2018 here) are used as given.
    func testPresplitFoldersOfAnyLayout() throws {
        for (split, ids) in [("train", ["a", "b"]), ("val", ["c"]), ("test", ["d"])] {
            for (k, id) in ids.enumerated() {
                try writeImage(imageFor(k), to: "\(root)/\(split)/\(id)/images/\(id).png")
                try writeImage(maskFor(k), to: "\(root)/\(split)/\(id)/masks/0.png")
            }
        }
        let data = try load()
        XCTAssertEqual(data.index.kind, .dsb2018)
        XCTAssertEqual(data.index.layout, .presplit)
        XCTAssertEqual([data.train.map(\.name), data.val.map(\.name), data.test.map(\.name)], [["a", "b"], ["c"], ["d"]])
        // A part in another layout is refused, naming both.
        removeDirectory(root + "/val")
        try writeImage(imageFor(0), to: "\(root)/val/images/x.png")
        try writeImage(maskFor(0), to: "\(root)/val/masks/x.png")
        XCTAssertEqual(thrownDescription { _ = try self.load() },
                       "\(root)/val: is in the images/ + masks/ layout but \(root)/train is in the DSB2018 stage 1 layout; use one layout")
    }

    func testExplicitFoldersAndSuffix() throws {
        for i in 0..<3 {
            try writeImage(imageFor(i), to: "\(root)/scans/s\(i).png")
            try writeImage(maskFor(i), to: "\(root)/labels/s\(i)_gt.png")
        }
        XCTAssertTrue(thrownDescription { _ = try self.load() }.hasPrefix("\(root): no known dataset layout"))
        let options = DatasetOptions(imagesDir: "scans", masksDir: "labels", maskSuffix: "_gt")
        let data = try load(options)
        XCTAssertEqual(data.index.kind, .explicit)
        XCTAssertEqual(data.index.matching, ["stem + _gt": 3])
        XCTAssertEqual(allSamples(data)["s2"]!.mask.storage, maskFor(2).storage)
        // Masks beside their images in one folder.
        for i in 0..<3 { try writeImage(maskFor(i), to: "\(root)/scans/s\(i)_gt.png") }
        let beside = try load(DatasetOptions(imagesDir: "scans", masksDir: "scans", maskSuffix: "_gt"))
        XCTAssertEqual(beside.index.matching, ["stem + _gt beside the image": 3])
        // Options that cannot work are refused naming the flag.
        XCTAssertEqual(thrownDescription { _ = try self.load(DatasetOptions(imagesDir: "../elsewhere")) },
                       "--images-dir must be a folder inside the dataset root, relative to it (got '../elsewhere')")
        XCTAssertTrue(thrownDescription { _ = try self.load(DatasetOptions(maskThreshold: 255)) }.hasPrefix("--mask-threshold must be in 0...254"))
    }

    /// Images with their masks beside them directly in the root (one BUSI class folder on its own),
    /// found automatically or named as `--images-dir . --masks-dir .`; paths stay relative.
    func testMasksBesideImagesInTheRootItself() throws {
        for i in 0..<3 {
            try writeImage(imageFor(i), to: "\(root)/case \(i).png")
            try writeImage(maskFor(i), to: "\(root)/case \(i)_mask.png")
        }
        let auto = try load()
        XCTAssertEqual(auto.index.kind, .busi)
        XCTAssertEqual(auto.index.files, ["case 0.png", "case 0_mask.png", "case 1.png", "case 1_mask.png", "case 2.png", "case 2_mask.png"])
        XCTAssertEqual(allSamples(auto)["case 1"]!.mask.storage, maskFor(1).storage)
        let named = try load(DatasetOptions(imagesDir: ".", masksDir: "."))
        XCTAssertEqual(named.index.kind, .explicit)
        XCTAssertEqual(named.index.files, auto.index.files)
    }

    func testUnmatchedFilesStopOrAreSkippedAndCounted() throws {
        for i in 0..<4 {
            try writeImage(imageFor(i), to: "\(root)/images/c\(i).jpg")
            try writeImage(maskFor(i), to: "\(root)/masks/c\(i)_mask.png")
        }
        try writeImage(imageFor(8), to: "\(root)/images/lonely.jpg")
        try writeImage(maskFor(9), to: "\(root)/masks/orphan_mask.png")
        try writeImage(maskFor(9), to: "\(root)/masks/stray.tif")
        XCTAssertEqual(thrownDescription { _ = try self.load() },
                       "\(root)/images/lonely.jpg: no mask for this image (looked for masks/lonely{,_mask,_segmentation,_Segmentation}.{png,jpg,jpeg,tif,tiff}); --skip-unmatched skips unmatched files")
        try FileManager.default.removeItem(atPath: "\(root)/images/lonely.jpg")
        XCTAssertEqual(thrownDescription { _ = try self.load() },
                       "\(root)/masks/orphan_mask.png: mask has no image (looked for images/orphan.{png,jpg,jpeg,tif,tiff} or images/orphan_mask.{png,jpg,jpeg,tif,tiff}); --skip-unmatched skips unmatched files")
        try writeImage(imageFor(8), to: "\(root)/images/lonely.jpg")
        let data = try load(DatasetOptions(skipUnmatched: true))
        XCTAssertEqual(allSamples(data).count, 4)
        XCTAssertEqual(data.index.skipped.map(\.path), ["images/lonely.jpg", "masks/orphan_mask.png", "masks/stray.tif"])
        XCTAssertTrue(data.index.skipped[0].reason.hasPrefix("image without a mask"))
        XCTAssertTrue(data.warnings.contains("\(root): skipped 3 unmatched files (--skip-unmatched): 1 image without a mask, 2 masks without an image; first: images/lonely.jpg"), "\(data.warnings)")
        XCTAssertFalse(data.index.files.contains("images/lonely.jpg"))
        // DSB2018: a sample folder without masks is an unmatched image too.
        removeDirectory(root)
        try writeImage(imageFor(0), to: "\(root)/x/images/x.png")
        try writeImage(maskFor(0), to: "\(root)/x/masks/1.png")
        for id in ["y", "z", "w"] { try writeImage(imageFor(1), to: "\(root)/\(id)/images/\(id).png"); try writeImage(maskFor(1), to: "\(root)/\(id)/masks/1.png") }
        try writeImage(imageFor(2), to: "\(root)/nomask/images/nomask.png")
        XCTAssertTrue(thrownDescription { _ = try self.load() }.hasPrefix("\(root)/nomask/images/nomask.png: no mask for this image"))
        XCTAssertEqual(try load(DatasetOptions(skipUnmatched: true)).index.skipped.map(\.path), ["nomask/images/nomask.png"])
    }

    func testCorruptFileInADatasetNamesIt() throws {
        for i in 0..<3 {
            try writeImage(imageFor(i), to: "\(root)/Original/\(i).tif")
            try writeImage(maskFor(i), to: "\(root)/Ground Truth/\(i).jpg")
        }
        let path = "\(root)/Ground Truth/1.jpg"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 40).write(to: URL(fileURLWithPath: path))
        let message = thrownDescription { _ = try self.load() }
        XCTAssertTrue(message.hasPrefix(path + ": file is truncated"), message)
        XCTAssertFalse(message.contains("\n"))
    }

    func testDatasetOptionsTravelAsJSONWithDefaultsForMissingKeys() throws {
        let decoded = try JSONDecoder().decode(DatasetOptions.self, from: Data("{}".utf8))
        XCTAssertEqual(decoded, DatasetOptions())
        XCTAssertEqual(decoded.maskThreshold, 127)
        let given = DatasetOptions(imagesDir: "a", masksDir: "b", maskSuffix: "_m", maskThreshold: 10, skipUnmatched: true)
        XCTAssertEqual(try JSONDecoder().decode(DatasetOptions.self, from: JSONEncoder().encode(given)), given)
    }
}
