import CTIFFSupport
import Engine
import Foundation

/// Reads TIFF files through libtiff as float tensors in [0, 1]: the stored samples divided by 255
/// or 65535 for 1-16-bit gray, RGB and palette images (palette expands to RGB, min-is-white gray is
/// inverted); other layouts libtiff can render (tiled, YCbCr, CMYK) come through its 8-bit RGBA
/// reader. Only the first page is read. Failures are `ImageFileError`s naming the file.
public enum TIFFCodec {
    /// Reads only the header: cheap, for sizes and kinds without decoding.
    public static func info(path: String) throws -> ImageInfo {
        var info = ctiffs_info()
        var message = [CChar](repeating: 0, count: 512)
        if ctiffs_read_info(path, &info, &message, message.count) != 0 {
            throw ImageFileError(path: path, reason: reason(message))
        }
        return ImageInfo(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                         bitDepth: Int(info.bit_depth), format: .tiff)
    }

    /// Decodes the first page as `[H, W, C]` (C = 1-4) and the depth its samples were scaled from.
    public static func read(path: String) throws -> (tensor: Tensor, bitDepth: Int) {
        var info = ctiffs_info()
        var buffer: UnsafeMutablePointer<Float>? = nil
        var message = [CChar](repeating: 0, count: 512)
        if ctiffs_read(path, ImageDecoder.maxPixels, &info, &buffer, &message, message.count) != 0 {
            throw ImageFileError(path: path, reason: reason(message))
        }
        defer { ctiffs_free(buffer) }
        return (tensor(copying: buffer, shape: [Int(info.height), Int(info.width), Int(info.channels)]), Int(info.bit_depth))
    }

    /// Writes an `[H, W, C]` tensor (C = 1-4) as an 8- or 16-bit TIFF; with `palette` (up to 256 RGB
    /// colours in [0, 1]) an 8-bit palette TIFF whose indices are the single channel's values x 255.
    /// For making test data: datasets are read, not written, by ranksweep.
    static func write(_ hwc: Tensor, to path: String, bitDepth: Int = 8, lzw: Bool = true,
                      palette: [(Float, Float, Float)]? = nil) throws {
        precondition(hwc.rank == 3 && (1...4).contains(hwc.shape[2]), "TIFFCodec.write: expected [H, W, 1-4], got \(hwc.shape)")
        var colormap: [UInt16]? = nil
        if let palette {
            var map = [UInt16](repeating: 0, count: 768)
            for (i, (r, g, b)) in palette.prefix(256).enumerated() {
                map[i] = UInt16((r * 65535).rounded()); map[256 + i] = UInt16((g * 65535).rounded()); map[512 + i] = UInt16((b * 65535).rounded())
            }
            colormap = map
        }
        var message = [CChar](repeating: 0, count: 512)
        let rc = hwc.storage.withUnsafeBufferPointer { samples in
            let call = { (map: UnsafePointer<UInt16>?) in
                ctiffs_write(path, samples.baseAddress, UInt32(hwc.shape[1]), UInt32(hwc.shape[0]), Int32(hwc.shape[2]),
                             Int32(bitDepth), lzw ? 1 : 0, map, &message, message.count)
            }
            return colormap.map { $0.withUnsafeBufferPointer { call($0.baseAddress) } } ?? call(nil)
        }
        if rc != 0 { throw ImageFileError(path: path, reason: reason(message)) }
    }

    private static func reason(_ message: [CChar]) -> String {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "unknown TIFF error" : text
    }
}
