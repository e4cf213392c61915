import Engine
import Foundation
import XCTest
@testable import Imaging

final class DatasetLoaderTests: XCTestCase {
    var root = ""
    override func setUp() { root = makeTemporaryDirectory("dataset") }
    override func tearDown() { removeDirectory(root) }

    /// Writes `names` as image/mask pairs under `root/prefix` (images 3-channel, masks binary).
    func makePairs(_ names: [String], prefix: String = "", width: Int = 16, height: Int = 16,
                   maskName: (String) -> String = { $0 }) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/\(prefix)images", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/\(prefix)masks", withIntermediateDirectories: true)
        for (i, name) in names.enumerated() {
            try PNGCodec.write(levelTensor(h: height, w: width, c: 3, bitDepth: 8, seed: UInt64(i)),
                               to: "\(root)/\(prefix)images/\(name).png")
            let mask = Tensor(shape: [height, width, 1], storage: (0..<(height * width)).map { Float(($0 + i) % 3 == 0 ? 1 : 0) })
            try PNGCodec.write(mask, to: "\(root)/\(prefix)masks/\(maskName(name)).png")
        }
    }

    func loadError() -> String {
        thrownDescription { _ = try DatasetLoader.load(root: self.root, size: 16) }
    }

    func testLoadsFlatLayoutWithSeededSplit() throws {
        try makePairs((0..<10).map { String(format: "case%02d", $0) })
        touch("\(root)/images/.DS_Store", Data([1, 2, 3]))
        touch("\(root)/README.txt", Data("about".utf8))
        let data = try DatasetLoader.load(root: root, size: 16, seed: 42)
        XCTAssertEqual(data.index.layout, .flat)
        XCTAssertEqual([data.train.count, data.val.count, data.test.count], [8, 1, 1])
        XCTAssertEqual(data.summary, "split 80/10/10 seed 42: 8 train, 1 val, 1 test")
        XCTAssertEqual(data.warnings, [])
        let all = Set((data.train + data.val + data.test).map(\.name))
        XCTAssertEqual(all.count, 10)
        let sample = data.train[0]
        XCTAssertEqual(sample.image.shape, [16, 16, 3])
        XCTAssertEqual(sample.mask.shape, [16, 16, 1])
        // Pixels are the file's: sample caseNN was written from levelTensor(seed: NN).
        let index = Int(sample.name.dropFirst(4))!
        XCTAssertEqual(sample.image.storage, levelTensor(h: 16, w: 16, c: 3, bitDepth: 8, seed: UInt64(index)).storage)
        XCTAssertTrue(sample.mask.storage.allSatisfy { $0 == 0 || $0 == 1 })
        XCTAssertEqual(sample.mask.storage[0], Float(index % 3 == 0 ? 1 : 0))

        // The file list for shipping: sorted, relative, dataset files only.
        let files = try DatasetLoader.files(root: root)
        XCTAssertEqual(files.count, 20)
        XCTAssertEqual(files.first, "images/case00.png")
        XCTAssertEqual(files.last, "masks/case09.png")
        XCTAssertEqual(files, files.sorted())

        // Gray loading.
        XCTAssertEqual(try DatasetLoader.load(root: root, size: 16, channels: 1).train[0].image.shape, [16, 16, 1])
    }

    func testSplitIsDeterministicAndSeedDependent() {
        let names = (0..<100).map { "n\($0)" }
        let a = DatasetSplit.split(names, seed: 1), b = DatasetSplit.split(names.reversed(), seed: 1)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.val, b.val)
        XCTAssertEqual(a.test, b.test)
        XCTAssertEqual([a.train.count, a.val.count, a.test.count], [80, 10, 10])
        XCTAssertEqual(Set(a.train + a.val + a.test).count, 100)
        let c = DatasetSplit.split(names, seed: 2)
        XCTAssertNotEqual(a.val, c.val)
        // Every part non-empty from 3 pairs on.
        for n in 3...12 {
            let s = DatasetSplit.split((0..<n).map { "x\($0)" }, seed: 9)
            XCTAssertTrue(!s.train.isEmpty && !s.val.isEmpty && !s.test.isEmpty, "n = \(n)")
            XCTAssertEqual(s.train.count + s.val.count + s.test.count, n)
        }
        let custom = DatasetSplit.split(names, fractions: SplitFractions(train: 0.7, val: 0.2, test: 0.1), seed: 1)
        XCTAssertEqual([custom.train.count, custom.val.count, custom.test.count], [70, 20, 10])
    }

    func testSeedChangesTheLoadedSplit() throws {
        try makePairs((0..<10).map { "p\($0)" })
        let a = try DatasetLoader.scan(root: root, seed: 1), b = try DatasetLoader.scan(root: root, seed: 1)
        let c = try DatasetLoader.scan(root: root, seed: 5)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.val.map(\.name) + a.test.map(\.name), c.val.map(\.name) + c.test.map(\.name))
    }

    func testPresplitLayoutIsUsedAsGiven() throws {
        try makePairs(["a", "b", "c"], prefix: "train/")
        try makePairs(["d"], prefix: "val/")
        try makePairs(["e", "f"], prefix: "test/")
        let data = try DatasetLoader.load(root: root + "/", size: 16)
        XCTAssertEqual(data.index.layout, .presplit)
        XCTAssertEqual(data.train.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(data.val.map(\.name), ["d"])
        XCTAssertEqual(data.test.map(\.name), ["e", "f"])
        XCTAssertEqual(data.summary, "train/val/test folders as given: 3 train, 1 val, 2 test")
        XCTAssertEqual(try DatasetLoader.files(root: root).first, "test/images/e.png")

        // Without test/: an empty test split and a warning.
        removeDirectory(root + "/test")
        let noTest = try DatasetLoader.load(root: root, size: 16)
        XCTAssertEqual(noTest.test.count, 0)
        XCTAssertEqual(noTest.warnings, ["\(root)/test: no test folder; the test split is empty"])

        // Mixing layouts is refused.
        try makePairs(["z"])
        XCTAssertTrue(loadError().contains("use one layout"))
    }

    func testResizesToTheModelSize() throws {
        try makePairs(["a", "b", "c"], width: 32, height: 24)
        let data = try DatasetLoader.load(root: root, size: 16)
        for s in data.train + data.val + data.test {
            XCTAssertEqual(s.image.shape, [16, 16, 3])
            XCTAssertEqual(s.mask.shape, [16, 16, 1])
            XCTAssertTrue(s.mask.storage.allSatisfy { $0 == 0 || $0 == 1 })
        }
        XCTAssertEqual(data.warnings, ["\(root)/images/a.png: 3 of 3 pairs resized to 16x16 (this one was 32x24)"])
    }

    func testMaskSuffixNamingAndAmbiguity() throws {
        try makePairs(["a", "b", "c"], maskName: { $0 + "_mask" })
        let data = try DatasetLoader.scan(root: root)
        XCTAssertEqual((data.train + data.val + data.test).flatMap(\.masks).sorted(), ["masks/a_mask.png", "masks/b_mask.png", "masks/c_mask.png"])
        try PNGCodec.write(Tensor(shape: [16, 16, 1], repeating: 0), to: "\(root)/masks/b.png")
        XCTAssertEqual(loadError(), "\(root)/images/b.png: more than one mask matches (\(root)/masks/b.png and \(root)/masks/b_mask.png); keep one")
    }

    func testMissingMaskNamesTheImage() throws {
        try makePairs(["a", "b", "c"])
        try FileManager.default.removeItem(atPath: "\(root)/masks/b.png")
        XCTAssertEqual(loadError(), "\(root)/images/b.png: no mask for this image (looked for masks/b{,_mask,_segmentation,_Segmentation}.{png,jpg,jpeg,tif,tiff}); --skip-unmatched skips unmatched files")
    }

    func testMaskWithoutImageNamesTheMask() throws {
        try makePairs(["a", "b", "c"])
        try FileManager.default.removeItem(atPath: "\(root)/images/c.png")
        XCTAssertEqual(loadError(), "\(root)/masks/c.png: mask has no image (looked for images/c.{png,jpg,jpeg,tif,tiff}); --skip-unmatched skips unmatched files")
    }

    func testTruncatedImageNamesTheFile() throws {
        try makePairs(["a", "b", "c"])
        let path = "\(root)/images/b.png"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 30).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(loadError(), "\(path): file is truncated (unexpected end of data)")
    }

    func testTextFileNamedPNGNamesTheFile() throws {
        try makePairs(["a", "b", "c"])
        try "hello".write(toFile: "\(root)/masks/a.png", atomically: true, encoding: .utf8)
        XCTAssertEqual(loadError(), "\(root)/masks/a.png: not a PNG, JPEG or TIFF file (it starts with bytes 68 65 6C 6C)")
    }

    func testSizeMismatchNamesBothFiles() throws {
        try makePairs(["a", "b", "c"])
        try PNGCodec.write(Tensor(shape: [8, 12, 1], repeating: 1), to: "\(root)/masks/c.png")
        XCTAssertEqual(loadError(), "\(root)/masks/c.png: mask is 12x8 but its image \(root)/images/c.png is 16x16")
    }

    func testNonPNGFileAndSubfolderAreRejected() throws {
        try makePairs(["a", "b", "c"])
        touch("\(root)/images/._a.png", Data([0]))   // hidden: ignored
        touch("\(root)/images/Thumbs.db", Data([0]))  // OS junk: ignored
        touch("\(root)/masks/notes.txt", Data([0]))     // a note: ignored, listed
        XCTAssertNoThrow(try DatasetLoader.load(root: root, size: 16))
        XCTAssertEqual(try DatasetLoader.scan(root: root).ignored, ["masks/notes.txt"])
        touch("\(root)/images/scan.bmp", Data([0x42, 0x4D]))
        XCTAssertEqual(loadError(), "\(root)/images/scan.bmp: not an image file (images and masks are .png, .jpg/.jpeg or .tif/.tiff; hidden files and notes such as .txt are ignored)")
        try FileManager.default.removeItem(atPath: "\(root)/images/scan.bmp")
        try FileManager.default.createDirectory(atPath: "\(root)/masks/extra", withIntermediateDirectories: false)
        XCTAssertTrue(loadError().hasPrefix("\(root)/masks/extra: unexpected sub-folder"))
    }

    func testMissingAndEmptyFolders() throws {
        XCTAssertEqual(thrownDescription { _ = try DatasetLoader.scan(root: self.root + "/nowhere") }, "\(root)/nowhere: dataset folder not found")
        XCTAssertTrue(loadError().hasPrefix("\(root): no known dataset layout"), loadError())
        try FileManager.default.createDirectory(atPath: "\(root)/images", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: "\(root)/masks", withIntermediateDirectories: false)
        XCTAssertEqual(loadError(), "\(root)/images: folder holds no image files (.png, .jpg/.jpeg, .tif/.tiff)")
        try makePairs(["a", "b"])
        XCTAssertEqual(loadError(), "\(root): 2 image/mask pairs; a train/val/test split needs at least 3")
        try FileManager.default.removeItem(atPath: "\(root)/masks")
        XCTAssertTrue(loadError().hasPrefix("\(root)/masks: folder not found (expected images/ and masks/ side by side"), loadError())
        // Pre-split without val/.
        removeDirectory(root + "/images")
        try makePairs(["a"], prefix: "train/")
        XCTAssertTrue(loadError().hasPrefix("\(root)/val: folder not found"), loadError())
    }

    func testNonBinaryMaskWarnsAndThresholds() throws {
        try makePairs(["a", "b", "c"])
        let soft = Tensor(shape: [16, 16, 1], storage: (0..<256).map { Float($0) / 255 })
        try PNGCodec.write(soft, to: "\(root)/masks/b.png")
        let data = try DatasetLoader.load(root: root, size: 16)
        XCTAssertEqual(data.warnings, ["\(root)/masks/b.png: mask is not binary (values between 0 and full scale); thresholded above 127 of 255"])
        let b = (data.train + data.val + data.test).first { $0.name == "b" }!
        XCTAssertEqual(b.mask.storage, (0..<256).map { $0 > 127 ? 1 : 0 })
    }
}
