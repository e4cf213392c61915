import Engine
import Foundation

/// An image file and its mask file, paths relative to the dataset root.
public struct ImageMaskPair: Equatable, Sendable {
    /// The image's file stem; names the sample.
    public let name: String
    /// `images/X.png` (or `train/images/X.png`...).
    public let image: String
    /// `masks/X.png` or `masks/X_mask.png` (or under a split folder).
    public let mask: String
}

/// A dataset folder checked for structure (names, pairing, file types) and split, before decoding.
public struct DatasetIndex: Equatable, Sendable {
    /// `flat`: `ROOT/images` + `ROOT/masks`, split by seed. `presplit`: `ROOT/{train,val,test}`
    /// each with `images/` + `masks/`, used as given.
    public enum Layout: String, Sendable { case flat, presplit }

    public let root: String
    public let layout: Layout
    public let train: [ImageMaskPair]
    public let val: [ImageMaskPair]
    public let test: [ImageMaskPair]
    /// One line for logs and reports: "split 80/10/10 seed 42: 80 train, 10 val, 10 test".
    public let summary: String
    /// Problems that do not stop loading (a missing test/ folder...), each naming its file or folder.
    public let warnings: [String]

    /// Every dataset file as a sorted path relative to the root (images and masks of every split):
    /// what a sweep hashes and packs to ship the dataset to workers. Other files under the root
    /// (READMEs, hidden files) are not part of the dataset and are left out.
    public var files: [String] {
        (train + val + test).flatMap { [$0.image, $0.mask] }.sorted()
    }
}

/// A dataset decoded to tensors at the model's size.
public struct LoadedDataset: Sendable {
    public let index: DatasetIndex
    public let train: [SegmentationSample]
    public let val: [SegmentationSample]
    public let test: [SegmentationSample]
    /// The index's warnings plus those from decoding (non-binary masks, resizing), each naming files.
    public let warnings: [String]
    /// Same as `index.summary`.
    public var summary: String { index.summary }
}

/// Finds, checks, splits and decodes dataset folders.
///
/// Layouts:
/// - flat: `ROOT/images/*.png` and `ROOT/masks/*.png`, split into train/val/test by seed
///   (`DatasetSplit`, default 80/10/10);
/// - pre-split: `ROOT/train`, `ROOT/val` and optionally `ROOT/test`, each holding `images/` and
///   `masks/`, used as given (a missing `test/` gives an empty test split and a warning).
///
/// Naming: the mask of `images/X.png` is `masks/X.png` or `masks/X_mask.png` (same stem, optional
/// `_mask` suffix; having both is an error). The extension `.png` matches in any case. Hidden files
/// (`.DS_Store`, `._X.png`) and `Thumbs.db` / `desktop.ini` are ignored; any other file or
/// sub-folder in images/ or masks/ is an error, since a stray `.jpg` there is almost always a
/// mistake the user wants to hear about.
///
/// Everything is checked before anything trains: `scan` checks the structure, `load` then decodes
/// every file and stops at the first problem, with a one-line `DatasetError` naming the file.
/// Masks are binarised at half of full scale; a mask holding other values (anti-aliased, JPEG
/// damage) is thresholded at 0.5 and named in the warnings, since it usually still is usable.
public enum DatasetLoader {
    /// The optional suffix of a mask's stem (`X_mask.png` for `X.png`).
    public static let maskSuffix = "_mask"
    /// Non-hidden names that operating systems drop into folders; ignored like hidden files.
    public static let ignoredNames: Set<String> = ["Thumbs.db", "desktop.ini"]
    /// At most this many non-binary masks are named one per warning line; the rest are counted.
    public static let maxNamedWarnings = 10

    /// Checks a dataset folder's structure and splits it (no pixels are decoded).
    public static func scan(root: String, fractions: SplitFractions = .standard, seed: UInt64 = 42) throws -> DatasetIndex {
        let root = normalised(root)
        guard isDirectory(root) else { throw DatasetError.rootNotFound(path: root) }
        let splitNames = ["train", "val", "test"]
        let presentSplits = splitNames.filter { isDirectory(root + "/" + $0) }
        let hasFlat = isDirectory(root + "/images") || isDirectory(root + "/masks")

        if !presentSplits.isEmpty {
            if hasFlat { throw DatasetError.mixedLayout(root: root) }
            for required in ["train", "val"] where !presentSplits.contains(required) {
                throw DatasetError.missingFolder(path: root + "/" + required,
                                                 expected: "a pre-split dataset needs train/ and val/, each with images/ and masks/")
            }
            let train = try pairs(root: root, prefix: "train/")
            let val = try pairs(root: root, prefix: "val/")
            var warnings: [String] = []
            var test: [ImageMaskPair] = []
            if presentSplits.contains("test") {
                test = try pairs(root: root, prefix: "test/")
            } else {
                warnings.append("\(root)/test: no test folder; the test split is empty")
            }
            let summary = "train/val/test folders as given: \(train.count) train, \(val.count) val, \(test.count) test"
            return DatasetIndex(root: root, layout: .presplit, train: train, val: val, test: test,
                                summary: summary, warnings: warnings)
        }

        let all = try pairs(root: root, prefix: "")
        if all.count < 3 { throw DatasetError.tooFewPairs(root: root, count: all.count, needed: 3) }
        let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
        let parts = DatasetSplit.split(all.map(\.name), fractions: fractions, seed: seed)
        let train = parts.train.map { byName[$0]! }, val = parts.val.map { byName[$0]! }, test = parts.test.map { byName[$0]! }
        let summary = "split \(fractions) seed \(seed): \(train.count) train, \(val.count) val, \(test.count) test"
        return DatasetIndex(root: root, layout: .flat, train: train, val: val, test: test, summary: summary, warnings: [])
    }

    /// Scans, then decodes every image (to `channels`, 1 or 3) and mask, resized to `size` x `size`
    /// where they differ (bilinear for images, nearest for masks).
    public static func load(root: String, size: Int, channels: Int = 3,
                            fractions: SplitFractions = .standard, seed: UInt64 = 42) throws -> LoadedDataset {
        precondition(size > 0, "DatasetLoader.load: size must be positive, got \(size)")
        precondition(channels == 1 || channels == 3, "DatasetLoader.load: channels must be 1 or 3, got \(channels)")
        let index = try scan(root: root, fractions: fractions, seed: seed)
        let root = index.root
        let decoded = try parallelMap(index.train.count + index.val.count + index.test.count) { i in
            let pair = i < index.train.count ? index.train[i]
                : i < index.train.count + index.val.count ? index.val[i - index.train.count]
                : index.test[i - index.train.count - index.val.count]
            return try decode(pair, root: root, size: size, channels: channels)
        }
        let train = decoded[0..<index.train.count].map(\.sample)
        let val = decoded[index.train.count..<(index.train.count + index.val.count)].map(\.sample)
        let test = decoded[(index.train.count + index.val.count)...].map(\.sample)
        let notBinary = decoded.filter { !$0.wasBinary }.map { root + "/" + $0.maskFile }
        let resized = decoded.filter { $0.originalSize != nil }

        var warnings = index.warnings
        for path in notBinary.prefix(maxNamedWarnings) {
            warnings.append("\(path): mask is not binary (values between 0 and full scale); thresholded at 0.5")
        }
        if notBinary.count > maxNamedWarnings {
            warnings.append("\(index.root): \(notBinary.count - maxNamedWarnings) more masks are not binary; thresholded at 0.5")
        }
        if let first = resized.first, let original = first.originalSize {
            warnings.append("\(root)/\(first.imageFile): \(resized.count) of \(decoded.count) pairs resized to \(size)x\(size) (this one was \(original.width)x\(original.height))")
        }
        return LoadedDataset(index: index, train: train, val: val, test: test, warnings: warnings)
    }

    /// The dataset's files as sorted paths relative to `root` (see `DatasetIndex.files`); checks
    /// the structure as `scan` does, so a broken folder is reported before it is shipped anywhere.
    public static func files(root: String) throws -> [String] {
        try scan(root: root).files
    }

    // MARK: - Internals

    private struct Decoded: Sendable {
        let sample: SegmentationSample
        let imageFile: String
        let maskFile: String
        let wasBinary: Bool
        let originalSize: (width: Int, height: Int)?
    }

    /// Decodes one pair, checks that image and mask agree in size, and resizes both to `size`.
    private static func decode(_ pair: ImageMaskPair, root: String, size: Int, channels: Int) throws -> Decoded {
        let imagePath = root + "/" + pair.image, maskPath = root + "/" + pair.mask
        var image: Tensor, mask: Tensor, wasBinary: Bool
        do {
            image = try PNGCodec.readImage(path: imagePath, channels: channels)
            (mask, wasBinary) = try PNGCodec.readMask(path: maskPath)
        } catch let error as PNGError {
            throw DatasetError.unreadable(error)
        }
        if image.shape[0] != mask.shape[0] || image.shape[1] != mask.shape[1] {
            throw DatasetError.sizeMismatch(image: imagePath, imageWidth: image.shape[1], imageHeight: image.shape[0],
                                            mask: maskPath, maskWidth: mask.shape[1], maskHeight: mask.shape[0])
        }
        var originalSize: (width: Int, height: Int)? = nil
        if image.shape[0] != size || image.shape[1] != size {
            originalSize = (image.shape[1], image.shape[0])
            image = Resize.bilinear(image, height: size, width: size)
            mask = Resize.nearest(mask, height: size, width: size)
        }
        return Decoded(sample: SegmentationSample(name: pair.name, image: image, mask: mask),
                       imageFile: pair.image, maskFile: pair.mask, wasBinary: wasBinary, originalSize: originalSize)
    }

    /// Pairs `ROOT/<prefix>images` with `ROOT/<prefix>masks`, sorted by name.
    private static func pairs(root: String, prefix: String) throws -> [ImageMaskPair] {
        let images = try pngFiles(root: root, folder: prefix + "images")
        let masks = try pngFiles(root: root, folder: prefix + "masks")
        var maskOf: [String: String] = [:]      // image stem -> mask file name
        var orphans: [String] = []
        for (stem, file) in masks.sorted(by: { $0.key < $1.key }) {
            var key: String? = images[stem] != nil ? stem : nil
            if key == nil, stem.hasSuffix(maskSuffix) {
                let base = String(stem.dropLast(maskSuffix.count))
                if images[base] != nil { key = base }
            }
            guard let key else { orphans.append(file); continue }
            if let other = maskOf[key] {
                throw DatasetError.ambiguousMask(image: "\(root)/\(prefix)images/\(images[key]!)",
                                                 masks: [other, file].sorted().map { "\(root)/\(prefix)masks/\($0)" })
            }
            maskOf[key] = file
        }
        var result: [ImageMaskPair] = []
        for (stem, file) in images.sorted(by: { $0.key < $1.key }) {
            guard let mask = maskOf[stem] else {
                throw DatasetError.missingMask(image: "\(root)/\(prefix)images/\(file)",
                                               expected: ["\(prefix)masks/\(stem).png", "\(prefix)masks/\(stem)\(maskSuffix).png"])
            }
            result.append(ImageMaskPair(name: stem, image: "\(prefix)images/\(file)", mask: "\(prefix)masks/\(mask)"))
        }
        if let orphan = orphans.first {
            let stem = String(orphan.dropLast(4))
            let base = stem.hasSuffix(maskSuffix) ? String(stem.dropLast(maskSuffix.count)) : stem
            throw DatasetError.maskWithoutImage(mask: "\(root)/\(prefix)masks/\(orphan)", expected: "\(prefix)images/\(base).png")
        }
        return result
    }

    /// The `.png` files of `ROOT/folder` by stem; throws for a missing or empty folder, a non-PNG
    /// file, a sub-folder, or two files whose names differ only in the extension's case.
    private static func pngFiles(root: String, folder: String) throws -> [String: String] {
        let path = root + "/" + folder
        guard isDirectory(path) else {
            throw DatasetError.missingFolder(path: path, expected: "expected \(folder) beside \(folder.hasSuffix("images") ? "masks" : "images")/, holding .png files")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw DatasetError.fileSystem(path: path, reason: "cannot list folder: \(error.localizedDescription)")
        }
        var byStem: [String: String] = [:]
        for name in names.sorted() where !name.hasPrefix(".") && !ignoredNames.contains(name) {
            let full = path + "/" + name
            if isDirectory(full) { throw DatasetError.unexpectedFolder(path: full) }
            guard name.lowercased().hasSuffix(".png") else { throw DatasetError.notPNG(path: full) }
            let stem = String(name.dropLast(4))
            if let first = byStem[stem] { throw DatasetError.duplicateStem(first: path + "/" + first, second: full) }
            byStem[stem] = name
        }
        if byStem.isEmpty { throw DatasetError.emptyFolder(path: path) }
        return byStem
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The root without trailing slashes, so joined paths read cleanly.
    private static func normalised(_ root: String) -> String {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        return r
    }
}
