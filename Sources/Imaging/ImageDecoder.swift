import Basics
import Engine
import Foundation

/// The image file formats ranksweep reads.
public enum ImageFormat: String, Codable, Sendable, CaseIterable {
    case png = "PNG", jpeg = "JPEG", tiff = "TIFF"

    /// File extensions (lower case) that hold images. Decoding goes by the file's first bytes, not
    /// by these: they only decide which files in a folder are images.
    public static let fileExtensions: Set<String> = ["png", "jpg", "jpeg", "tif", "tiff"]

    /// The format whose signature starts `bytes`, if any: PNG `89 50 4E 47 0D 0A 1A 0A`, JPEG
    /// `FF D8 FF`, TIFF `II*\0` / `MM\0*` (and BigTIFF `II+\0` / `MM\0+`).
    public static func detect(signature bytes: [UInt8]) -> ImageFormat? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A])
            || bytes.starts(with: [0x49, 0x49, 0x2B, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2B]) { return .tiff }
        return nil
    }
}

/// What an image file's header says (after expansion: palette reads as RGB, low-depth gray as 8-bit).
public struct ImageInfo: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// 8 or 16: the full scale the samples are divided by is 2^bitDepth - 1.
    public let bitDepth: Int
    public let format: ImageFormat

    public init(width: Int, height: Int, channels: Int, bitDepth: Int, format: ImageFormat) {
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.format = format
    }

    /// Gray (with or without alpha), as opposed to colour.
    public var isGray: Bool { channels <= 2 }

    /// "RGB 8-bit JPEG", "gray+alpha 16-bit PNG".
    public var kind: String {
        let colour = ["gray", "gray+alpha", "RGB", "RGBA"][max(0, min(3, channels - 1))]
        return "\(colour) \(bitDepth)-bit \(format.rawValue)"
    }
}

/// A decoded image file: `[H, W, C]` samples in [0, 1] with the depth they were scaled from.
public struct DecodedImage: Sendable {
    public let tensor: Tensor
    public let bitDepth: Int
    public let format: ImageFormat
}

/// The one way in for image files: dispatches on the file's first bytes (a PNG named `.jpg` still
/// reads) to `PNGCodec`, `JPEGCodec` or `TIFFCodec`, and converts to what a model or a mask needs.
/// Every failure is an `ImageFileError` naming the file.
public enum ImageDecoder {
    /// Largest image decoded, in pixels (8192 x 8192): a larger header is more likely a broken or
    /// hostile file than a scan, and would ask for gigabytes.
    public static let maxPixels = 8192 * 8192

    /// The file's format, from its first bytes.
    public static func format(path: String) throws -> ImageFormat {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = access(path, F_OK) == 0 ? "cannot open: permission denied" : "cannot open: no such file"
            throw ImageFileError(path: path, reason: reason)
        }
        defer { try? handle.close() }
        let bytes = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
        if bytes.isEmpty { throw ImageFileError(path: path, reason: "file is empty") }
        guard let format = ImageFormat.detect(signature: bytes) else {
            let hex = bytes.prefix(4).map { String(format: "%02X", $0) }.joined(separator: " ")
            throw ImageFileError(path: path, reason: "not a PNG, JPEG or TIFF file (it starts with bytes \(hex))")
        }
        return format
    }

    /// Reads only the header: cheap, for sizes and kinds without decoding pixels.
    public static func info(path: String) throws -> ImageInfo {
        switch try format(path: path) {
        case .png:
            let i = try PNGCodec.info(path: path)
            return ImageInfo(width: i.width, height: i.height, channels: i.channels, bitDepth: i.bitDepth, format: .png)
        case .jpeg: return try JPEGCodec.info(path: path)
        case .tiff: return try TIFFCodec.info(path: path)
        }
    }

    /// Decodes the file with its native channel count (1-4), values in [0, 1].
    public static func decode(path: String) throws -> DecodedImage {
        switch try format(path: path) {
        case .png:
            let (tensor, depth) = try PNGCodec.decodeWithDepth(path: path)
            return DecodedImage(tensor: tensor, bitDepth: depth, format: .png)
        case .jpeg:
            return DecodedImage(tensor: try JPEGCodec.read(path: path), bitDepth: 8, format: .jpeg)
        case .tiff:
            let (tensor, depth) = try TIFFCodec.read(path: path)
            return DecodedImage(tensor: tensor, bitDepth: depth, format: .tiff)
        }
    }

    /// Decodes an image as `[H, W, channels]` for a model that takes `channels` (1 or 3): gray is
    /// replicated to RGB, RGB becomes gray by luminance (0.299, 0.587, 0.114), alpha is dropped.
    public static func readImage(path: String, channels: Int) throws -> Tensor {
        precondition(channels == 1 || channels == 3, "ImageDecoder.readImage: channels must be 1 or 3, got \(channels)")
        return PNGCodec.convert(try decode(path: path).tensor, toChannels: channels)
    }

    /// Decodes a segmentation mask as `[H, W, 1]` of exactly 0 or 1 (see `binarise`).
    public static func readMask(path: String, threshold: Int = DatasetOptions.defaultMaskThreshold) throws -> (mask: Tensor, wasBinary: Bool) {
        let decoded = try decode(path: path)
        return binarise(decoded.tensor, bitDepth: decoded.bitDepth, threshold: threshold)
    }

    /// A mask as `[H, W, 1]` of exactly 0 or 1.
    ///
    /// Colour masks collapse to their brightest colour channel (so a pure red mask still counts as
    /// foreground; alpha is ignored). A sample is foreground when above `threshold` of 255 (scaled
    /// to the depth: 127 is 32639 of 65535), so JPEG artefacts around 0 and 255 fall on the right
    /// side. Masks that store labels 0/1 (every sample 0 or the smallest non-zero level, e.g. 0 and
    /// 1 of 255) are read as labels, since thresholding them would silently give empty masks.
    /// `wasBinary` is false when the file held other values (anti-aliased edges, JPEG artefacts).
    public static func binarise(_ native: Tensor, bitDepth: Int, threshold: Int) -> (mask: Tensor, wasBinary: Bool) {
        precondition(native.rank == 3 && (1...4).contains(native.shape[2]), "ImageDecoder.binarise: expected [H, W, 1-4], got \(native.shape)")
        let h = native.shape[0], w = native.shape[1], c = native.shape[2]
        let colour = c == 2 || c == 4 ? c - 1 : c
        let full = Float((1 << bitDepth) - 1)
        let levelThreshold = threshold * ((1 << bitDepth) - 1) / 255
        var levels = [Int](repeating: 0, count: h * w)
        var onlyFullScale = true   // every sample is 0 or full scale
        var onlyLabels = true      // every sample is 0 or the lowest non-zero level
        var anyNonZero = false
        let fullLevel = (1 << bitDepth) - 1
        native.storage.withUnsafeBufferPointer { src in
            for p in 0..<(h * w) {
                var v: Float = 0
                for k in 0..<colour { v = max(v, src[p * c + k]) }
                let level = Int((v * full).rounded())
                levels[p] = level
                if level != 0 {
                    anyNonZero = true
                    if level != fullLevel { onlyFullScale = false }
                    if level != 1 { onlyLabels = false }
                }
            }
        }
        let labels = anyNonZero && onlyLabels && !onlyFullScale
        let cut = labels ? 0 : levelThreshold
        let mask = levels.map { $0 > cut ? Float(1) : 0 }
        return (Tensor(shape: [h, w, 1], storage: mask), onlyFullScale || labels)
    }
}
