import Engine
import Foundation
@testable import Imaging
import XCTest

/// `ranksweep dataset check` on a small dataset in each recognised layout, written with the real
/// encoders: the binary names the layout, counts the pairs and kinds, and reports skips.
extension CLITests {
    func testDatasetCheckReportsEachLayout() throws {
        let dir = try temporaryDirectory()
        func mask(_ i: Int, h: Int = 16, w: Int = 16) -> Tensor {
            Tensor(shape: [h, w, 1], storage: (0..<(h * w)).map { ($0 / w) % 8 >= i % 4 && ($0 % w) > 3 ? 1 : 0 })
        }
        func image(_ i: Int, c: Int = 3, h: Int = 16, w: Int = 16) -> Tensor {
            Tensor(shape: [h, w, c], storage: (0..<(h * w * c)).map { Float(($0 + i) % 50) / 50 })
        }
        func folder(_ path: String) throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

        // Kvasir-SEG: JPEG images and masks of two sizes.
        let kvasir = dir + "/kvasir"
        try folder(kvasir + "/images"); try folder(kvasir + "/masks")
        for i in 0..<5 {
            let w = i < 3 ? 16 : 20
            try JPEGCodec.write(image(i, w: w), to: "\(kvasir)/images/cju\(i).jpg")
            try JPEGCodec.write(mask(i, w: w), to: "\(kvasir)/masks/cju\(i).jpg", quality: 75)
        }
        // ISIC 2018 Task 1, with its licence notes.
        let isic = dir + "/isic"
        try folder(isic + "/ISIC2018_Task1-2_Training_Input"); try folder(isic + "/ISIC2018_Task1_Training_GroundTruth")
        touch(isic + "/ISIC2018_Task1-2_Training_Input/LICENSE.txt")
        for i in 0..<4 {
            let id = String(format: "ISIC_%07d", i)
            try JPEGCodec.write(image(i), to: "\(isic)/ISIC2018_Task1-2_Training_Input/\(id).jpg")
            try PNGCodec.write(mask(i), to: "\(isic)/ISIC2018_Task1_Training_GroundTruth/\(id)_segmentation.png")
        }
        // BUSI: gray PNGs, one image with two lesions.
        let busi = dir + "/busi"
        for cls in ["benign", "malignant", "normal"] {
            try folder("\(busi)/\(cls)")
            try PNGCodec.write(image(1, c: 1), to: "\(busi)/\(cls)/\(cls) (1).png")
            try PNGCodec.write(mask(1), to: "\(busi)/\(cls)/\(cls) (1)_mask.png")
        }
        try PNGCodec.write(mask(2), to: "\(busi)/benign/benign (1)_mask_1.png")
        // DSB2018 stage 1: RGBA images, one mask per nucleus; one sample without masks.
        let dsb = dir + "/dsb"
        for (s, id) in ["0a7d", "1b2c", "2c3d", "3d4e"].enumerated() {
            try folder("\(dsb)/\(id)/images"); try folder("\(dsb)/\(id)/masks")
            try PNGCodec.write(image(s, c: 4), to: "\(dsb)/\(id)/images/\(id).png")
            for n in 0..<(s + 1) { try PNGCodec.write(mask(n), to: "\(dsb)/\(id)/masks/m\(n).png") }
        }
        try folder("\(dsb)/4e5f/images")
        try PNGCodec.write(image(9, c: 4), to: "\(dsb)/4e5f/images/4e5f.png")
        // CVC-ClinicDB: TIFF on both sides.
        let cvc = dir + "/cvc"
        try folder(cvc + "/Original"); try folder(cvc + "/Ground Truth")
        for i in 1...4 {
            try TIFFCodec.write(image(i), to: "\(cvc)/Original/\(i).tif")
            try TIFFCodec.write(mask(i), to: "\(cvc)/Ground Truth/\(i).tif")
        }
        // Anything else: named folders and suffix; 16-bit PNG images.
        let other = dir + "/other"
        try folder(other + "/scans"); try folder(other + "/labels")
        for i in 0..<3 {
            try PNGCodec.write(image(i, c: 1), to: "\(other)/scans/s\(i).png", bitDepth: 16)
            try PNGCodec.write(mask(i), to: "\(other)/labels/s\(i)_gt.png")
        }

        let expectations: [(String, [String], [String])] = [
            (kvasir, [], ["layout: images/ + masks/ (split by seed)", "pairs: 5;", "sizes 16x16 (3), 20x16 (2); RGB 8-bit JPEG (5)",
                          "masks: 5 (1 per image); gray 8-bit JPEG (5)", "matched: same stem (5)", "5 JPEG masks hold compression artefacts"]),
            (isic, [], ["layout: ISIC 2018 Task 1 (split by seed)", "pairs: 4;", "matched: stem + _segmentation (4)",
                        "ignored: 1 note file (ISIC2018_Task1-2_Training_Input/LICENSE.txt)"]),
            (busi, ["--gray"], ["layout: BUSI (split by seed)", "pairs: 3;", "gray 8-bit PNG (3)", "masks: 4 (1-2 per image, united)"]),
            (dsb, ["--skip_unmatched"], ["layout: DSB2018 stage 1 (split by seed)", "pairs: 4;", "RGBA 8-bit PNG (4)",
                                        "masks: 10 (1-4 per image, united)", "skipped: 1 (--skip-unmatched)",
                                        "  4e5f/images/4e5f.png: image without a mask"]),
            (cvc, [], ["layout: CVC-ClinicDB (split by seed)", "pairs: 4;", "RGB 8-bit TIFF (4)", "gray 8-bit TIFF (4)"]),
            (other, ["--images-dir", "scans", "--masks_dir", "labels", "--mask-suffix", "_gt", "--mask-threshold", "100"],
             ["layout: --images-dir/--masks-dir (split by seed)", "gray 16-bit PNG (3)", "matched: stem + _gt (3)", "foreground above 100 of 255"]),
        ]
        for (root, flags, lines) in expectations {
            let r = try run(["dataset", "check", root, "--size", "16"] + flags)
            print(r.output)
            XCTAssertEqual(r.status, 0, r.output)
            for line in lines { XCTAssertTrue(r.output.contains(line), "\(root): missing '\(line)' in\n\(r.output)") }
            XCTAssertTrue(r.output.contains("ok: "), r.output)
        }

        // Without --skip-unmatched the unmatched DSB sample stops the check, naming the file.
        let r = try run(["dataset", "check", dsb, "--size", "16"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("\(dsb)/4e5f/images/4e5f.png: no mask for this image"), r.output)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.contains("4e5f") }.count, 1, r.output)
    }
}

private func touch(_ path: String) { FileManager.default.createFile(atPath: path, contents: Data("note".utf8)) }
