import Basics
import CPNGSupport
import Engine
import Foundation

/// Reads and writes PNG files through libpng, as float tensors in [0, 1].
///
/// Values are the *stored* samples scaled by the depth's full scale (value / 255 or value / 65535):
/// no gamma or colour-space conversion, so a mask saved as 255 reads back as exactly 1. The classic
/// libpng API does the work inside the `CPNGSupport` C target, because libpng reports errors by
/// `longjmp`, which Swift cannot catch; every failure comes back as a `ImageFileError` naming the file.
///
/// Every layout libpng knows is read: 1/2/4/8/16-bit gray, gray+alpha, RGB, RGBA and palette.
/// Palette images expand to RGB (RGBA when they carry transparency), low-depth gray to 8 bits
/// (scaled, so a 1-bit white reads as 1), and a tRNS chunk becomes an alpha channel.
public enum PNGCodec {
    /// Largest image decoded, in pixels (the same bound for every format).
    public static let maxPixels = ImageDecoder.maxPixels

    /// What a PNG header says, after expansion (see the type's doc comment).
    public struct Info: Equatable, Sendable {
        public let width: Int
        public let height: Int
        /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
        public let channels: Int
        /// 8 or 16: the full scale the samples are divided by is 2^bitDepth - 1.
        public let bitDepth: Int
    }

    /// Reads only the header: cheap, for checking sizes without decoding.
    public static func info(path: String) throws -> Info {
        var info = cpngs_info()
        var message = [CChar](repeating: 0, count: 512)
        if cpngs_read_info(path, &info, &message, message.count) != 0 {
            throw ImageFileError(path: path, reason: string(message))
        }
        return Info(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                    bitDepth: Int(info.bit_depth))
    }

    /// Decodes a PNG as `[H, W, C]` with its native channel count (1-4), values in [0, 1].
    public static func read(path: String) throws -> Tensor {
        try decodeWithDepth(path: path).tensor
    }

    /// Decodes a PNG as `[H, W, channels]` for a model that takes `channels` (1 or 3): gray is
    /// replicated to RGB, RGB becomes gray by luminance (0.299, 0.587, 0.114), alpha is dropped.
    public static func readImage(path: String, channels: Int) throws -> Tensor {
        precondition(channels == 1 || channels == 3, "PNGCodec.readImage: channels must be 1 or 3, got \(channels)")
        return convert(try read(path: path), toChannels: channels)
    }

    /// Decodes a segmentation mask as `[H, W, 1]` of exactly 0 or 1, foreground above 127 of 255
    /// (see `ImageDecoder.binarise`). `wasBinary` is false when the file held other values.
    public static func readMask(path: String) throws -> (mask: Tensor, wasBinary: Bool) {
        let (native, bitDepth) = try decodeWithDepth(path: path)
        return ImageDecoder.binarise(native, bitDepth: bitDepth, threshold: DatasetOptions.defaultMaskThreshold)
    }

    /// Writes an `[H, W, C]` tensor (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as an 8- or 16-bit PNG.
    /// Values are clamped to [0, 1] and rounded to the nearest level. The file appears atomically:
    /// it is written under a hidden temporary name in the same folder, then renamed over `path`.
    public static func write(_ hwc: Tensor, to path: String, bitDepth: Int = 8) throws {
        precondition(hwc.rank == 3, "PNGCodec.write: expected [H, W, C], got \(hwc.shape)")
        precondition((1...4).contains(hwc.shape[2]), "PNGCodec.write: 1-4 channels, got \(hwc.shape[2])")
        precondition(bitDepth == 8 || bitDepth == 16, "PNGCodec.write: bit depth 8 or 16, got \(bitDepth)")
        precondition(hwc.shape[0] > 0 && hwc.shape[1] > 0, "PNGCodec.write: empty image \(hwc.shape)")
        let temporary = AtomicFile.temporaryPath(beside: path)
        var message = [CChar](repeating: 0, count: 512)
        let rc = hwc.storage.withUnsafeBufferPointer { samples in
            cpngs_write(temporary, samples.baseAddress, UInt32(hwc.shape[1]), UInt32(hwc.shape[0]),
                        Int32(hwc.shape[2]), Int32(bitDepth), &message, message.count)
        }
        if rc != 0 {
            unlink(temporary)
            throw ImageFileError(path: path, reason: string(message))
        }
        do { try AtomicFile.commit(temporary, to: path) } catch {
            throw ImageFileError(path: path, reason: "cannot move the written file into place: \(error)")
        }
    }

    /// Converts an `[H, W, C]` image with C in 1...4 to `channels` (1 or 3) as `readImage` does.
    public static func convert(_ hwc: Tensor, toChannels channels: Int) -> Tensor {
        precondition(hwc.rank == 3 && (1...4).contains(hwc.shape[2]), "PNGCodec.convert: expected [H, W, 1-4], got \(hwc.shape)")
        precondition(channels == 1 || channels == 3, "PNGCodec.convert: channels must be 1 or 3, got \(channels)")
        let h = hwc.shape[0], w = hwc.shape[1], c = hwc.shape[2]
        if c == channels { return hwc }
        let pixels = h * w
        var out = [Float](repeating: 0, count: pixels * channels)
        hwc.storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let colour = c == 2 || c == 4 ? c - 1 : c   // alpha is always last and dropped
                for p in 0..<pixels {
                    let s = p * c
                    if colour == 1 {
                        let v = src[s]
                        if channels == 1 { dst[p] = v } else { dst[3 * p] = v; dst[3 * p + 1] = v; dst[3 * p + 2] = v }
                    } else if channels == 3 {
                        dst[3 * p] = src[s]; dst[3 * p + 1] = src[s + 1]; dst[3 * p + 2] = src[s + 2]
                    } else {
                        dst[p] = 0.299 * src[s] + 0.587 * src[s + 1] + 0.114 * src[s + 2]
                    }
                }
            }
        }
        return Tensor(shape: [h, w, channels], storage: out)
    }

    // MARK: - Internals

    /// Decodes with the depth the samples were scaled from (8 or 16).
    static func decodeWithDepth(path: String) throws -> (tensor: Tensor, bitDepth: Int) {
        var info = cpngs_info()
        var buffer: UnsafeMutablePointer<Float>? = nil
        var message = [CChar](repeating: 0, count: 512)
        if cpngs_read(path, maxPixels, &info, &buffer, &message, message.count) != 0 {
            throw ImageFileError(path: path, reason: string(message))
        }
        defer { cpngs_free(buffer) }
        return (tensor(copying: buffer, shape: [Int(info.height), Int(info.width), Int(info.channels)]), Int(info.bit_depth))
    }

    private static func string(_ message: [CChar]) -> String {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "unknown PNG error" : text
    }
}
