import Engine
import Foundation
import XCTest
@testable import Imaging

/// JPEG and TIFF through the real libjpeg-turbo and libtiff, and the one entry point that
/// dispatches on a file's first bytes.
final class ImageDecoderTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTemporaryDirectory("decoder") }
    override func tearDown() { removeDirectory(dir) }

    func testJPEGGrayAndRGBDecodeCloseToTheSource() throws {
        for c in [1, 3] {
            let source = smoothImage(h: 24, w: 40, c: c)
            let path = "\(dir)/s\(c).jpg"
            try JPEGCodec.write(source, to: path, quality: 98)
            XCTAssertEqual(try ImageDecoder.info(path: path), ImageInfo(width: 40, height: 24, channels: c, bitDepth: 8, format: .jpeg))
            let decoded = try ImageDecoder.decode(path: path)
            XCTAssertEqual(decoded.format, .jpeg)
            XCTAssertEqual(decoded.tensor.shape, [24, 40, c])
            let worst = zip(decoded.tensor.storage, source.storage).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 0.06, "channels \(c)")
            XCTAssertEqual(try ImageDecoder.readImage(path: path, channels: 3).shape, [24, 40, 3])
        }
    }

    func testTIFFReadsEveryLayoutExactly() throws {
        for depth in [8, 16] {
            for c in 1...4 {
                for lzw in [false, true] {
                    let source = levelTensor(h: 5, w: 7, c: c, bitDepth: depth, seed: UInt64(depth * 10 + c))
                    let path = "\(dir)/t\(depth)-\(c)-\(lzw).tif"
                    try TIFFCodec.write(source, to: path, bitDepth: depth, lzw: lzw)
                    XCTAssertEqual(try ImageDecoder.info(path: path), ImageInfo(width: 7, height: 5, channels: c, bitDepth: depth, format: .tiff))
                    let decoded = try ImageDecoder.decode(path: path)
                    XCTAssertEqual(decoded.bitDepth, depth)
                    XCTAssertEqual(decoded.tensor.shape, [5, 7, c])
                    XCTAssertEqual(decoded.tensor.storage, source.storage, "\(depth)-bit, \(c) channels, lzw \(lzw)")
                }
            }
        }
    }

    func testPaletteTIFFAndPaletteAndGrayAlphaPNGExpand() throws {
        let colours: [(Float, Float, Float)] = [(0, 0, 0), (1, 0, 0), (0, 0.5, 1)]
        let indices = Tensor(shape: [1, 3, 1], storage: [0, 1, 2].map { Float($0) / 255 })
        try TIFFCodec.write(indices, to: "\(dir)/pal.tif", palette: colours)
        let pal = try ImageDecoder.decode(path: "\(dir)/pal.tif")
        XCTAssertEqual(pal.tensor.shape, [1, 3, 3])
        XCTAssertEqual(pal.tensor.storage, [0, 0, 0, 1, 0, 0, 0, Float((0.5 * 65535).rounded()) / 65535, 1])
        XCTAssertEqual(try ImageDecoder.info(path: "\(dir)/pal.tif").channels, 3)

        // Palette PNG written byte by byte, read through the same entry point.
        RawPNG.write(RawPNG.make(width: 2, height: 1, bitDepth: 8, colorType: 3, rows: [[1, 0]], palette: [0, 0, 0, 255, 255, 255]),
                     to: "\(dir)/pal.png")
        XCTAssertEqual(try ImageDecoder.decode(path: "\(dir)/pal.png").tensor.storage, [1, 1, 1, 0, 0, 0])
        let (palMask, _) = try ImageDecoder.readMask(path: "\(dir)/pal.png")
        XCTAssertEqual(palMask.storage, [1, 0])

        // Gray+alpha: gray replicated for an RGB model, alpha ignored by masks.
        try PNGCodec.write(Tensor(shape: [1, 2, 2], storage: [0.2, 1, 0.8, 0]), to: "\(dir)/ga.png")
        XCTAssertEqual(try ImageDecoder.info(path: "\(dir)/ga.png").kind, "gray+alpha 8-bit PNG")
        XCTAssertEqual(try ImageDecoder.readImage(path: "\(dir)/ga.png", channels: 3).storage, [0.2, 0.2, 0.2, 0.8, 0.8, 0.8].map { Float(($0 * 255).rounded()) / 255 })
        XCTAssertEqual(try ImageDecoder.readMask(path: "\(dir)/ga.png").mask.storage, [0, 1])
    }

    func testDispatchGoesByTheFirstBytesNotTheExtension() throws {
        let image = levelTensor(h: 4, w: 4, c: 3, bitDepth: 8, seed: 3)
        try PNGCodec.write(image, to: "\(dir)/really-png.jpg")
        try TIFFCodec.write(image, to: "\(dir)/really-tiff.png")
        try JPEGCodec.write(image, to: "\(dir)/really-jpeg.tif")
        XCTAssertEqual(try ImageDecoder.format(path: "\(dir)/really-png.jpg"), .png)
        XCTAssertEqual(try ImageDecoder.format(path: "\(dir)/really-tiff.png"), .tiff)
        XCTAssertEqual(try ImageDecoder.format(path: "\(dir)/really-jpeg.tif"), .jpeg)
        XCTAssertEqual(try ImageDecoder.decode(path: "\(dir)/really-png.jpg").tensor.storage, image.storage)
        XCTAssertEqual(try ImageDecoder.decode(path: "\(dir)/really-tiff.png").tensor.storage, image.storage)
        XCTAssertEqual(try ImageDecoder.decode(path: "\(dir)/really-jpeg.tif").tensor.shape, [4, 4, 3])
    }

    /// Damaged files: one line, starting with the file, saying what is wrong; never a crash or a
    /// silently gray image.
    func testCorruptJPEGAndTIFFGiveOneLineErrorsNamingTheFile() throws {
        let image = smoothImage(h: 64, w: 64, c: 3)
        try JPEGCodec.write(image, to: "\(dir)/a.jpg")
        try TIFFCodec.write(image, to: "\(dir)/a.tif", lzw: true)
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/a.jpg"))
        let tiff = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/a.tif"))
        var cases: [(String, Data, String)] = [
            ("cut.jpg", jpeg.prefix(jpeg.count / 2), "truncated"),
            ("header-only.jpg", jpeg.prefix(20), "truncated"),
            ("cut.tif", tiff.prefix(tiff.count / 2), "TIFF"),
            ("header-only.tif", tiff.prefix(8), "TIFF"),
            ("text.tif", Data("hello world".utf8), "not a PNG, JPEG or TIFF file (it starts with bytes 68 65 6C 6C)"),
            ("empty.jpg", Data(), "file is empty"),
        ]
        // A marker in the middle of the compressed data, and a frame header saying 0 rows.
        func markerAt(_ code: UInt8) -> Int { (0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == code }! }
        var marker = jpeg
        let middle = (markerAt(0xDA) + jpeg.count) / 2   // halfway through the scan data
        marker[middle] = 0xFF
        marker[middle + 1] = 0xC4
        cases.append(("marker.jpg", marker, "cannot decode JPEG (libjpeg: Corrupt JPEG data"))
        var noRows = jpeg
        let sof = markerAt(0xC0)
        noRows[sof + 5] = 0
        noRows[sof + 6] = 0
        cases.append(("no-rows.jpg", noRows, "cannot decode JPEG (libjpeg: "))
        for (name, bytes, expected) in cases {
            let path = "\(dir)/\(name)"
            touch(path, bytes)
            for read in [{ _ = try ImageDecoder.decode(path: path) }, { _ = try ImageDecoder.readMask(path: path) }] {
                let message = thrownDescription(read)
                XCTAssertTrue(message.hasPrefix(path + ": "), message)
                XCTAssertTrue(message.contains(expected), "\(name): \(message)")
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        XCTAssertEqual(thrownDescription { _ = try ImageDecoder.info(path: "\(self.dir)/none.tif") }, "\(dir)/none.tif: cannot open: no such file")
    }

    /// JPEG masks carry ringing around 0 and 255; the default threshold (127 of 255) recovers the
    /// drawn mask exactly.
    func testJPEGMaskWithArtefactsBinarisesToTheSource() throws {
        for quality in [50, 75, 90] {
            let source = rectangleMask(h: 40, w: 48, rows: 9..<30, cols: 5..<37)
            let path = "\(dir)/m\(quality).jpg"
            try JPEGCodec.write(source, to: path, quality: quality)
            let raw = try ImageDecoder.decode(path: path).tensor.storage
            XCTAssertTrue(raw.contains { $0 != 0 && $0 != 1 }, "quality \(quality): the file has artefacts to remove")
            let (mask, wasBinary) = try ImageDecoder.readMask(path: path)
            XCTAssertFalse(wasBinary)
            XCTAssertEqual(mask.storage, source.storage, "quality \(quality)")
        }
    }

    /// The threshold is a level of 255, scaled to 16 bits (127 -> 32639 of 65535), for PNG and TIFF.
    func testThresholdScalesToSixteenBits() throws {
        let levels: [Float] = [0, 32639, 32640, 51400, 51401, 65535].map { $0 / 65535 }
        let soft = Tensor(shape: [1, 6, 1], storage: levels)
        try PNGCodec.write(soft, to: "\(dir)/m16.png", bitDepth: 16)
        try TIFFCodec.write(soft, to: "\(dir)/m16.tif", bitDepth: 16)
        for path in ["\(dir)/m16.png", "\(dir)/m16.tif"] {
            XCTAssertEqual(try ImageDecoder.info(path: path).bitDepth, 16)
            XCTAssertEqual(try ImageDecoder.readMask(path: path).mask.storage, [0, 0, 1, 1, 1, 1], path)
            XCTAssertEqual(try ImageDecoder.readMask(path: path, threshold: 200).mask.storage, [0, 0, 0, 0, 1, 1], path)
        }
        // 8-bit: foreground strictly above the threshold.
        try PNGCodec.write(Tensor(shape: [1, 3, 1], storage: [127, 128, 255].map { $0 / 255 }), to: "\(dir)/m8.png")
        XCTAssertEqual(try ImageDecoder.readMask(path: "\(dir)/m8.png").mask.storage, [0, 1, 1])
        XCTAssertEqual(try ImageDecoder.readMask(path: "\(dir)/m8.png", threshold: 0).mask.storage, [1, 1, 1])
    }

    func testAreaResizeAveragesWhatEachPixelCovers() {
        let input = Tensor(shape: [4, 4, 1], storage: (0..<16).map(Float.init))
        func close(_ a: Tensor, _ b: [Float]) { XCTAssertEqual(a.storage.count, b.count); for (x, y) in zip(a.storage, b) { XCTAssertEqual(x, y, accuracy: 1e-5) } }
        close(Resize.area(input, height: 1, width: 1), [7.5])
        close(Resize.area(input, height: 1, width: 4), [6, 7, 8, 9])
        // 3 -> 2: each output covers one and a half inputs.
        close(Resize.area(Tensor(shape: [1, 3, 1], storage: [0, 3, 6]), height: 1, width: 2), [1, 5])
        // A 1-pixel line survives a 4x shrink as a quarter, where bilinear sampling would miss it.
        let line = Tensor(shape: [8, 8, 1], storage: (0..<64).map { $0 % 8 == 1 ? 1 : 0 })
        close(Resize.image(line, height: 2, width: 2), [0.25, 0, 0.25, 0])
        XCTAssertEqual(Resize.image(Tensor(shape: [2, 2, 1], storage: [0, 1, 0, 1]), height: 4, width: 4).shape, [4, 4, 1])
    }
}
