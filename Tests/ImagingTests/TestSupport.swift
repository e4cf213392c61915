import Engine
import Foundation
import XCTest
@testable import Imaging

/// A fresh temporary folder per test, removed afterwards.
func makeTemporaryDirectory(_ label: String = "imaging") -> String {
    let path = NSTemporaryDirectory() + "ranksweep-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDirectory(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

/// Creates (or replaces) a file holding `data`, failing the test if it cannot.
func touch(_ path: String, _ data: Data, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: data), "cannot create \(path)", file: file, line: line)
}

/// Runs `body`, which must throw; returns the thrown error's description.
func thrownDescription(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
        try body()
        XCTFail("expected an error", file: file, line: line)
        return ""
    } catch {
        return String(describing: error)
    }
}

/// Builds PNG files byte by byte (uncompressed deflate "stored" blocks), independently of libpng's
/// writer, so the reader is checked against files we did not write with it: palette, 1-bit gray,
/// tRNS. Scanlines are given unfiltered; filter type 0 is prepended.
enum RawPNG {
    static func make(width: Int, height: Int, bitDepth: Int, colorType: Int, rows: [[UInt8]],
                     palette: [UInt8]? = nil, transparency: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr = be32(UInt32(width)) + be32(UInt32(height))
        ihdr += [UInt8(bitDepth), UInt8(colorType), 0, 0, 0]
        out += chunk("IHDR", ihdr)
        if let palette { out += chunk("PLTE", palette) }
        if let transparency { out += chunk("tRNS", transparency) }
        var raw: [UInt8] = []
        for row in rows { raw.append(0); raw += row }
        out += chunk("IDAT", zlibStored(raw))
        out += chunk("IEND", [])
        return out
    }

    static func write(_ bytes: [UInt8], to path: String) {
        touch(path, Data(bytes))
    }

    private static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return be32(UInt32(data.count)) + typeBytes + data + be32(crc32(typeBytes + data))
    }

    private static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out += [final, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8((~n >> 8) & 255)]
            out += data[offset..<(offset + n)]
            offset += n
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return out + be32((b << 16) | a)
    }

    private static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}

/// An `[h, w, c]` tensor whose samples are exact levels of `bitDepth` (k / (2^bitDepth - 1)).
func levelTensor(h: Int, w: Int, c: Int, bitDepth: Int, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let full = UInt64((1 << bitDepth) - 1)
    let values = (0..<(h * w * c)).map { i -> Float in
        // Include both ends of the range, then random levels.
        if i == 0 { return 0 }
        if i == 1 { return 1 }
        return Float(rng.next() % (full + 1)) / Float(full)
    }
    return Tensor(shape: [h, w, c], storage: values)
}

/// Writes `hwc` with the real encoder the extension names: `.png` (libpng, `bitDepth`), `.jpg`
/// (libjpeg-turbo, `quality`), `.tif` (libtiff, `bitDepth`), creating the folder.
func writeImage(_ hwc: Tensor, to path: String, bitDepth: Int = 8, quality: Int = 95) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    switch (path as NSString).pathExtension.lowercased() {
    case "png": try PNGCodec.write(hwc, to: path, bitDepth: bitDepth)
    case "jpg", "jpeg": try JPEGCodec.write(hwc, to: path, quality: quality)
    case "tif", "tiff": try TIFFCodec.write(hwc, to: path, bitDepth: bitDepth)
    default: XCTFail("writeImage: unknown extension of \(path)")
    }
}

/// A binary `[h, w, 1]` mask: a filled rectangle (rows `rows`, columns `cols`) on background.
func rectangleMask(h: Int, w: Int, rows: Range<Int>, cols: Range<Int>) -> Tensor {
    Tensor(shape: [h, w, 1], storage: (0..<(h * w)).map { rows.contains($0 / w) && cols.contains($0 % w) ? 1 : 0 })
}

/// A smooth `[h, w, c]` image (triangle-wave gradients, no jumps), which JPEG keeps close to the original.
func smoothImage(h: Int, w: Int, c: Int, phase: Int = 0) -> Tensor {
    let n = h + w
    var values: [Float] = []
    for y in 0..<h {
        for x in 0..<w {
            for k in 0..<c {
                let t = (x + y + 7 * k + phase) % (2 * n)
                values.append(Float(t < n ? t : 2 * n - t) / Float(n))
            }
        }
    }
    return Tensor(shape: [h, w, c], storage: values)
}
