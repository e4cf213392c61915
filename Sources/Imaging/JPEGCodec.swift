import CJPEGSupport
import Engine
import Foundation

/// Reads JPEG files through libjpeg-turbo as float tensors in [0, 1] (sample / 255): gray stays one
/// channel, YCbCr and RGB become RGB. The work happens in the `CJPEGSupport` C target, because
/// libjpeg reports errors by `longjmp`; a truncated or damaged file is an error naming the file,
/// never a half-gray image.
public enum JPEGCodec {
    /// Reads only the header: cheap, for sizes and kinds without decoding.
    public static func info(path: String) throws -> ImageInfo {
        var info = cjpegs_info()
        var message = [CChar](repeating: 0, count: 512)
        if cjpegs_read_info(path, &info, &message, message.count) != 0 {
            throw ImageFileError(path: path, reason: reason(message))
        }
        return ImageInfo(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                         bitDepth: Int(info.bit_depth), format: .jpeg)
    }

    /// Decodes a JPEG as `[H, W, C]` (C = 1 or 3), values in [0, 1].
    public static func read(path: String) throws -> Tensor {
        var info = cjpegs_info()
        var buffer: UnsafeMutablePointer<Float>? = nil
        var message = [CChar](repeating: 0, count: 512)
        if cjpegs_read(path, ImageDecoder.maxPixels, &info, &buffer, &message, message.count) != 0 {
            throw ImageFileError(path: path, reason: reason(message))
        }
        defer { cjpegs_free(buffer) }
        return tensor(copying: buffer, shape: [Int(info.height), Int(info.width), Int(info.channels)])
    }

    /// Writes an `[H, W, C]` tensor (C = 1 or 3) as a baseline JPEG of `quality` (1-100). For making
    /// test data: datasets are read, not written, by ranksweep.
    static func write(_ hwc: Tensor, to path: String, quality: Int = 90) throws {
        precondition(hwc.rank == 3 && (hwc.shape[2] == 1 || hwc.shape[2] == 3), "JPEGCodec.write: expected [H, W, 1 or 3], got \(hwc.shape)")
        var message = [CChar](repeating: 0, count: 512)
        let rc = hwc.storage.withUnsafeBufferPointer { samples in
            cjpegs_write(path, samples.baseAddress, UInt32(hwc.shape[1]), UInt32(hwc.shape[0]), Int32(hwc.shape[2]),
                         Int32(quality), &message, message.count)
        }
        if rc != 0 { throw ImageFileError(path: path, reason: reason(message)) }
    }

    private static func reason(_ message: [CChar]) -> String {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "unknown JPEG error" : text
    }
}

/// A tensor of `shape` holding a copy of a C decoder's buffer.
func tensor(copying buffer: UnsafeMutablePointer<Float>?, shape: [Int]) -> Tensor {
    let count = shape.reduce(1, *)
    let storage = [Float](unsafeUninitializedCapacity: count) { dst, initialized in
        if count > 0, let buffer { dst.baseAddress!.update(from: buffer, count: count) }
        initialized = count
    }
    return Tensor(shape: shape, storage: storage)
}
