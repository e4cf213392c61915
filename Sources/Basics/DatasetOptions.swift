import Foundation

/// How a dataset folder's images and masks are found and read, beyond the automatic layouts. One
/// value travels unchanged from the command line into job specs and to sweep workers, so every
/// host pairs and binarises the same way. Each default is defined here once.
public struct DatasetOptions: Codable, Sendable, Equatable {
    /// Masks are foreground above 127 of 255 (scaled for 16-bit), so JPEG artefacts binarise well.
    public static let defaultMaskThreshold = 127

    /// Folder of the images, relative to the dataset root (or to each train/val/test folder);
    /// nil: found by layout. Setting it or `masksDir` turns layout detection off.
    public var imagesDir: String?
    /// Folder of the masks, relative like `imagesDir`; it may equal `imagesDir` (masks beside images).
    public var masksDir: String?
    /// A mask's stem is the image's stem plus this suffix (`""`: the same stem); nil: the same stem
    /// or the stem plus `_mask`, `_segmentation` or `_Segmentation`.
    public var maskSuffix: String?
    /// Mask samples above this level of 255 are foreground (0...254).
    public var maskThreshold: Int
    /// Skip images without a mask and masks without an image (counted and named) instead of stopping.
    public var skipUnmatched: Bool

    public init(imagesDir: String? = nil, masksDir: String? = nil, maskSuffix: String? = nil,
                maskThreshold: Int = DatasetOptions.defaultMaskThreshold, skipUnmatched: Bool = false) {
        self.imagesDir = imagesDir
        self.masksDir = masksDir
        self.maskSuffix = maskSuffix
        self.maskThreshold = maskThreshold
        self.skipUnmatched = skipUnmatched
    }

    private enum CodingKeys: String, CodingKey { case imagesDir, masksDir, maskSuffix, maskThreshold, skipUnmatched }

    /// Absent keys take the defaults, so specs written before a field existed still read.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = DatasetOptions()
        imagesDir = try c.decodeIfPresent(String.self, forKey: .imagesDir)
        masksDir = try c.decodeIfPresent(String.self, forKey: .masksDir)
        maskSuffix = try c.decodeIfPresent(String.self, forKey: .maskSuffix)
        maskThreshold = try c.decodeIfPresent(Int.self, forKey: .maskThreshold) ?? defaults.maskThreshold
        skipUnmatched = try c.decodeIfPresent(Bool.self, forKey: .skipUnmatched) ?? defaults.skipUnmatched
    }

    /// True when the folders are given rather than detected.
    public var hasExplicitFolders: Bool { imagesDir != nil || masksDir != nil }

    /// The problem with these options in one line, naming the flag, or nil when they are usable.
    public var problem: String? {
        if !(0...254).contains(maskThreshold) {
            return "--mask-threshold must be in 0...254 (a level of 255; foreground is above it), got \(maskThreshold)"
        }
        for (flag, folder) in [("--images-dir", imagesDir), ("--masks-dir", masksDir)] {
            guard let folder else { continue }
            let parts = folder.split(separator: "/")
            if folder.isEmpty || folder.hasPrefix("/") || parts.contains("..") {
                return "\(flag) must be a folder inside the dataset root, relative to it (got '\(folder)')"
            }
        }
        if let maskSuffix, maskSuffix.contains("/") {
            return "--mask-suffix is part of a file name and cannot hold '/' (got '\(maskSuffix)')"
        }
        return nil
    }
}
