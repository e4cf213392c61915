import Engine
import Foundation
import XCTest
@testable import Imaging

final class PNGCodecTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTemporaryDirectory("png") }
    override func tearDown() { removeDirectory(dir) }

    /// Every writable layout (gray, gray+alpha, RGB, RGBA at 8 and 16 bits) reads back exactly.
    func testRoundTripEveryLayoutIsExact() throws {
        for bitDepth in [8, 16] {
            for channels in 1...4 {
                let original = levelTensor(h: 7, w: 5, c: channels, bitDepth: bitDepth, seed: UInt64(10 * bitDepth + channels))
                let path = "\(dir)/c\(channels)-b\(bitDepth).png"
                try PNGCodec.write(original, to: path, bitDepth: bitDepth)
                let info = try PNGCodec.info(path: path)
                XCTAssertEqual(info, PNGCodec.Info(width: 5, height: 7, channels: channels, bitDepth: bitDepth))
                let back = try PNGCodec.read(path: path)
                XCTAssertEqual(back.shape, [7, 5, channels])
                XCTAssertEqual(back.storage, original.storage, "channels \(channels), \(bitDepth)-bit")
            }
        }
    }

    /// 16-bit keeps levels that 8-bit cannot hold: stored values, no gamma conversion.
    func testSixteenBitKeepsStoredValues() throws {
        let values: [Float] = [0, 1, 257, 1000, 32768, 65534, 65535].map { Float($0) / 65535 }
        let t = Tensor(shape: [1, 7, 1], storage: values)
        try PNGCodec.write(t, to: "\(dir)/g16.png", bitDepth: 16)
        XCTAssertEqual(try PNGCodec.read(path: "\(dir)/g16.png").storage, values)
        // Written as 8-bit, the same values round to the nearest of 255 levels.
        try PNGCodec.write(t, to: "\(dir)/g8.png")
        XCTAssertEqual(try PNGCodec.read(path: "\(dir)/g8.png").storage, [0, 0, 1, 4, 128, 255, 255].map { Float($0) / 255 })
    }

    func testWriteClampsAndIsAtomic() throws {
        let t = Tensor(shape: [1, 3, 1], storage: [-0.5, 0.5, 2])
        let path = "\(dir)/clamp.png"
        try PNGCodec.write(t, to: path)
        XCTAssertEqual(try PNGCodec.read(path: path).storage, [0, 128.0 / 255, 1])
        // Overwriting replaces the file; no temporary file is left behind.
        try PNGCodec.write(Tensor(shape: [1, 1, 1], storage: [1]), to: path)
        XCTAssertEqual(try PNGCodec.read(path: path).shape, [1, 1, 1])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["clamp.png"])
        // A missing folder is an error naming the file.
        let message = thrownDescription { try PNGCodec.write(t, to: "\(self.dir)/nope/x.png") }
        XCTAssertTrue(message.contains("nope/x.png"), message)
    }

    /// Files not written by our writer: palette (with and without tRNS), 1-bit gray, gray + tRNS.
    func testReadsPaletteLowDepthAndTransparency() throws {
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 10, 20, 30]
        RawPNG.write(RawPNG.make(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[0, 1, 2]], palette: palette),
                     to: "\(dir)/pal.png")
        let pal = try PNGCodec.read(path: "\(dir)/pal.png")
        XCTAssertEqual(pal.shape, [1, 3, 3])
        XCTAssertEqual(pal.storage, palette.map { Float($0) / 255 })

        // 2-bit palette with transparency: becomes RGBA.
        RawPNG.write(RawPNG.make(width: 4, height: 1, bitDepth: 2, colorType: 3, rows: [[0b00_01_10_00]],
                                 palette: palette, transparency: [0, 128]), to: "\(dir)/pal-trns.png")
        let palT = try PNGCodec.read(path: "\(dir)/pal-trns.png")
        XCTAssertEqual(palT.shape, [1, 4, 4])
        XCTAssertEqual(Array(palT.storage[0..<8]), [1, 0, 0, 0, 0, 1, 0, 128.0 / 255])
        XCTAssertEqual(Array(palT.storage[8..<12]), [10.0 / 255, 20.0 / 255, 30.0 / 255, 1])
        XCTAssertEqual(try PNGCodec.readImage(path: "\(dir)/pal-trns.png", channels: 3).storage[3..<6], [0, 1, 0])

        // 1-bit gray: 1 is white (full scale), so it reads as 1.
        RawPNG.write(RawPNG.make(width: 8, height: 1, bitDepth: 1, colorType: 0, rows: [[0b1010_0011]]), to: "\(dir)/bits.png")
        XCTAssertEqual(try PNGCodec.read(path: "\(dir)/bits.png").storage, [1, 0, 1, 0, 0, 0, 1, 1])
        let (mask, binary) = try PNGCodec.readMask(path: "\(dir)/bits.png")
        XCTAssertTrue(binary)
        XCTAssertEqual(mask.storage, [1, 0, 1, 0, 0, 0, 1, 1])

        // 16-bit gray: big-endian samples in the file, host values after reading.
        RawPNG.write(RawPNG.make(width: 2, height: 1, bitDepth: 16, colorType: 0, rows: [[0x12, 0x34, 0xFF, 0xFF]]), to: "\(dir)/g16.png")
        XCTAssertEqual(try PNGCodec.read(path: "\(dir)/g16.png").storage, [Float(0x1234) / 65535, 1])
    }

    func testChannelConversion() throws {
        let rgb = Tensor(shape: [1, 2, 3], storage: [1, 0, 0, 0.2, 0.4, 0.6])
        try PNGCodec.write(rgb, to: "\(dir)/rgb.png", bitDepth: 16)
        let gray = try PNGCodec.readImage(path: "\(dir)/rgb.png", channels: 1)
        XCTAssertEqual(gray.shape, [1, 2, 1])
        XCTAssertEqual(gray.storage[0], 0.299, accuracy: 1e-6)
        XCTAssertEqual(gray.storage[1], 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6, accuracy: 1e-4)

        let g = Tensor(shape: [1, 2, 2], storage: [0.2, 1, 0.6, 0])   // gray + alpha
        try PNGCodec.write(g, to: "\(dir)/ga.png")
        let asRGB = try PNGCodec.readImage(path: "\(dir)/ga.png", channels: 3)
        XCTAssertEqual(asRGB.shape, [1, 2, 3])
        XCTAssertEqual(asRGB.storage, [51, 51, 51, 153, 153, 153].map { Float($0) / 255 })
        XCTAssertEqual(try PNGCodec.readImage(path: "\(dir)/ga.png", channels: 1).storage, [51.0 / 255, 153.0 / 255])

        let rgba = Tensor(shape: [1, 1, 4], storage: [1, 0.4, 0, 0])
        try PNGCodec.write(rgba, to: "\(dir)/rgba.png")
        XCTAssertEqual(try PNGCodec.readImage(path: "\(dir)/rgba.png", channels: 3).storage, [1, 102.0 / 255, 0])
    }

    func testMaskBinarisation() throws {
        // Already binary (0 / 255).
        try PNGCodec.write(Tensor(shape: [1, 3, 1], storage: [0, 1, 1]), to: "\(dir)/bin.png")
        var (mask, binary) = try PNGCodec.readMask(path: "\(dir)/bin.png")
        XCTAssertTrue(binary)
        XCTAssertEqual(mask.storage, [0, 1, 1])
        // Grey levels: not binary, thresholded at half of full scale.
        try PNGCodec.write(Tensor(shape: [1, 4, 1], storage: [0, 100.0 / 255, 128.0 / 255, 200.0 / 255]), to: "\(dir)/soft.png")
        (mask, binary) = try PNGCodec.readMask(path: "\(dir)/soft.png")
        XCTAssertFalse(binary)
        XCTAssertEqual(mask.storage, [0, 0, 1, 1])
        // Labels 0 / 1 (of 255): read as labels, not thresholded into an empty mask.
        try PNGCodec.write(Tensor(shape: [1, 3, 1], storage: [0, 1.0 / 255, 0]), to: "\(dir)/labels.png")
        (mask, binary) = try PNGCodec.readMask(path: "\(dir)/labels.png")
        XCTAssertTrue(binary)
        XCTAssertEqual(mask.storage, [0, 1, 0])
        // A pure red RGB mask is foreground (brightest colour channel).
        try PNGCodec.write(Tensor(shape: [1, 2, 3], storage: [1, 0, 0, 0, 0, 0]), to: "\(dir)/red.png")
        (mask, binary) = try PNGCodec.readMask(path: "\(dir)/red.png")
        XCTAssertTrue(binary)
        XCTAssertEqual(mask.storage, [1, 0])
    }

    func testTruncatedFileThrowsNamingTheFile() throws {
        let path = "\(dir)/whole.png"
        try PNGCodec.write(levelTensor(h: 32, w: 32, c: 3, bitDepth: 8, seed: 3), to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = "\(dir)/cut-short.png"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        let message = thrownDescription { _ = try PNGCodec.read(path: truncated) }
        XCTAssertTrue(message.contains("cut-short.png"), message)
        XCTAssertTrue(message.contains("truncated"), message)
        // A header alone still reads, but decoding fails.
        try bytes.prefix(45).write(to: URL(fileURLWithPath: truncated))
        XCTAssertEqual(try PNGCodec.info(path: truncated).width, 32)
        XCTAssertTrue(thrownDescription { _ = try PNGCodec.readMask(path: truncated) }.contains("cut-short.png: file is truncated"))
    }

    func testCorruptTextAndMissingFilesThrowNamingTheFile() throws {
        let text = "\(dir)/notes.png"
        try "just some text, not an image\n".write(toFile: text, atomically: true, encoding: .utf8)
        let message = thrownDescription { _ = try PNGCodec.read(path: text) }
        XCTAssertTrue(message.hasPrefix(text), message)
        XCTAssertTrue(message.contains("not a PNG file"), message)

        touch("\(dir)/empty.png", Data())
        XCTAssertEqual(thrownDescription { _ = try PNGCodec.read(path: "\(self.dir)/empty.png") }, "\(dir)/empty.png: file is empty")

        XCTAssertTrue(thrownDescription { _ = try PNGCodec.read(path: "\(self.dir)/absent.png") }
            .contains("absent.png: cannot open: No such file or directory"))

        // Flip a byte inside the image data: the CRC check catches it.
        let path = "\(dir)/flipped.png"
        try PNGCodec.write(levelTensor(h: 8, w: 8, c: 1, bitDepth: 8, seed: 4), to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 20] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let corrupt = thrownDescription { _ = try PNGCodec.read(path: path) }
        XCTAssertTrue(corrupt.hasPrefix(path + ": corrupt PNG data (libpng:"), corrupt)
    }
}
