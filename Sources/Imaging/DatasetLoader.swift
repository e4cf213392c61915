import Basics
import Engine
import Foundation

/// An image file and its mask file(s), paths relative to the dataset root.
public struct ImageMaskPair: Equatable, Sendable {
    /// The sample's name: the image's file stem (the sample folder for DSB2018); unique per split.
    public let name: String
    /// `images/X.jpg`, `Original/12.tif`, `ID/images/ID.png`...
    public let image: String
    /// The mask, or several instance masks (BUSI `X_mask_1.png`, DSB2018 `ID/masks/*.png`) united
    /// when read.
    public let masks: [String]

    public init(name: String, image: String, masks: [String]) {
        self.name = name
        self.image = image
        self.masks = masks
    }
}

/// The dataset layouts recognised automatically (see `DatasetLoader`).
public enum DatasetKind: String, Codable, Sendable {
    case imagesMasks = "images/ + masks/"
    case isic2018 = "ISIC 2018 Task 1"
    case busi = "BUSI"
    case dsb2018 = "DSB2018 stage 1"
    case cvcClinicDB = "CVC-ClinicDB"
    case explicit = "--images-dir/--masks-dir"
}

/// A file left out of the dataset by `--skip-unmatched`, and why.
public struct SkippedFile: Equatable, Sendable {
    /// Relative to the dataset root.
    public let path: String
    /// "image without a mask (looked for ...)" or "mask without an image (looked for ...)".
    public let reason: String
}

/// A dataset folder checked for structure (names, pairing, file types) and split, before decoding.
public struct DatasetIndex: Equatable, Sendable {
    /// `flat`: one set of pairs, split by seed. `presplit`: `ROOT/{train,val,test}` (or ISIC's
    /// Training/Validation/Test folders), used as given.
    public enum Layout: String, Sendable { case flat, presplit }

    public let root: String
    public let layout: Layout
    /// Which folder layout the pairs were found in.
    public let kind: DatasetKind
    public let train: [ImageMaskPair]
    public let val: [ImageMaskPair]
    public let test: [ImageMaskPair]
    /// One line for logs and reports: "split 80/10/10 seed 42: 80 train, 10 val, 10 test".
    public let summary: String
    /// Problems that do not stop loading (a missing test/ folder, skipped files...), each naming its file or folder.
    public let warnings: [String]
    /// How masks were matched to images: rule ("stem + _mask", "instance masks united") -> pairs.
    public let matching: [String: Int]
    /// Unmatched files left out (only with `skipUnmatched`; otherwise they are errors).
    public let skipped: [SkippedFile]
    /// Notes beside the data (`LICENSE.txt`, `ATTRIBUTION.txt`...), ignored; relative to the root.
    public let ignored: [String]
    /// The options the folder was scanned with; `load` binarises masks by them.
    public let options: DatasetOptions

    /// Every dataset file as a sorted path relative to the root (images and every mask of every
    /// split): what a sweep hashes and packs to ship the dataset to workers. Other files under the
    /// root (READMEs, hidden files, skipped files) are not part of the dataset and are left out.
    public var files: [String] {
        (train + val + test).flatMap { [$0.image] + $0.masks }.sorted()
    }

    /// Every pair, train then val then test.
    public var pairs: [ImageMaskPair] { train + val + test }
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
/// Layouts, recognised automatically (see `DatasetLayouts`), each also under `train/`, `val/` and
/// optionally `test/` (used as given; otherwise the pairs are split by seed, default 80/10/10):
/// `images/` + `masks/` (Kvasir-SEG...), ISIC 2018 Task 1, BUSI, DSB2018 stage 1, CVC-ClinicDB;
/// `DatasetOptions` names the folders and suffix for anything else. Images and masks may be PNG,
/// JPEG or TIFF in any mix, 8 or 16 bits; decoding goes by the file's first bytes.
///
/// Everything is checked before anything trains: `scan` checks the structure, `load` then decodes
/// every file and stops at the first problem, with a one-line `DatasetError` naming the file.
/// Masks are foreground above `maskThreshold` of 255; instance masks of one image are united.
public enum DatasetLoader {
    /// Non-hidden names that operating systems drop into folders; ignored like hidden files.
    public static let ignoredNames: Set<String> = ["Thumbs.db", "desktop.ini"]
    /// Extensions of notes that datasets ship beside their images (ISIC's LICENSE.txt...): ignored.
    public static let noteExtensions: Set<String> = ["txt", "md", "csv", "json", "html", "pdf", "xlsx"]
    /// At most this many non-binary masks are named one per warning line; the rest are counted.
    public static let maxNamedWarnings = 10

    /// Checks a dataset folder's structure and splits it (no pixels are decoded).
    public static func scan(root: String, fractions: SplitFractions = .standard, seed: UInt64 = 42,
                            options: DatasetOptions = DatasetOptions()) throws -> DatasetIndex {
        let root = normalised(root)
        guard isDirectory(root) else { throw DatasetError.rootNotFound(path: root) }
        if let problem = options.problem { throw DatasetError.invalidOptions(problem) }
        let found = try DatasetLayouts.find(root: root, options: options)

        // Every part in one layout, names unique within a part, unmatched files stop or are skipped.
        var kind: DatasetKind? = nil, kindOf = ""
        var matching: [String: Int] = [:], unmatched: [DatasetLayouts.Unmatched] = [], ignored: [String] = []
        for part in found.parts {
            let here = part.prefix.isEmpty ? root : root + "/" + part.prefix.dropLast()
            if let kind, kind != part.scan.kind {
                throw DatasetError.mixedKinds(first: kindOf, firstKind: kind.rawValue, second: here, secondKind: part.scan.kind.rawValue)
            }
            kind = part.scan.kind
            kindOf = here
            matching.merge(part.scan.matching, uniquingKeysWith: +)
            unmatched += part.scan.unmatched
            ignored += part.scan.ignored
            var seen: [String: String] = [:]
            for pair in part.scan.pairs {
                if let first = seen[pair.name] {
                    throw DatasetError.duplicateName(first: root + "/" + first, second: root + "/" + pair.image)
                }
                seen[pair.name] = pair.image
            }
        }
        var warnings = found.warnings
        if let first = unmatched.first {
            if !options.skipUnmatched { throw first.error }
            let images = unmatched.filter(\.isImage).count
            warnings.append("\(root): skipped \(unmatched.count) unmatched file\(unmatched.count == 1 ? "" : "s") (--skip-unmatched): \(images) image\(images == 1 ? "" : "s") without a mask, \(unmatched.count - images) mask\(unmatched.count - images == 1 ? "" : "s") without an image; first: \(first.skipped.path)")
        }
        let skipped = unmatched.map(\.skipped)
        let byPart = Dictionary(found.parts.map { ($0.split, $0.scan.pairs) }, uniquingKeysWith: +)

        if found.presplit {
            let train = byPart["train"] ?? [], val = byPart["val"] ?? [], test = byPart["test"] ?? []
            let summary = "train/val/test folders as given: \(train.count) train, \(val.count) val, \(test.count) test"
            return DatasetIndex(root: root, layout: .presplit, kind: kind!, train: train, val: val, test: test, summary: summary,
                                warnings: warnings, matching: matching, skipped: skipped, ignored: ignored, options: options)
        }
        let all = byPart[""] ?? []
        if all.count < 3 { throw DatasetError.tooFewPairs(root: root, count: all.count, needed: 3) }
        let byName = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let parts = DatasetSplit.split(all.map(\.name), fractions: fractions, seed: seed)
        let train = parts.train.map { byName[$0]! }, val = parts.val.map { byName[$0]! }, test = parts.test.map { byName[$0]! }
        let summary = "split \(fractions) seed \(seed): \(train.count) train, \(val.count) val, \(test.count) test"
        return DatasetIndex(root: root, layout: .flat, kind: kind!, train: train, val: val, test: test, summary: summary,
                            warnings: warnings, matching: matching, skipped: skipped, ignored: ignored, options: options)
    }

    /// Scans, then decodes every image (to `channels`, 1 or 3) and mask, resized to `size` x `size`
    /// where they differ (area or bilinear for images, nearest for masks).
    public static func load(root: String, size: Int, channels: Int = 3, fractions: SplitFractions = .standard,
                            seed: UInt64 = 42, options: DatasetOptions = DatasetOptions()) throws -> LoadedDataset {
        precondition(size > 0, "DatasetLoader.load: size must be positive, got \(size)")
        precondition(channels == 1 || channels == 3, "DatasetLoader.load: channels must be 1 or 3, got \(channels)")
        let index = try scan(root: root, fractions: fractions, seed: seed, options: options)
        return try decode(index, size: size, channels: channels)
    }

    /// Decodes every pair of a scanned `index` as `load` does (samples held compactly: see
    /// `SegmentationSample`).
    public static func decode(_ index: DatasetIndex, size: Int, channels: Int) throws -> LoadedDataset {
        precondition(size > 0 && (channels == 1 || channels == 3), "DatasetLoader.decode: size \(size), channels \(channels)")
        let options = index.options
        let root = index.root
        let pairs = index.pairs
        let decoded = try parallelMap(pairs.count) { i in
            try decode(pairs[i], root: root, size: size, channels: channels, threshold: options.maskThreshold)
        }
        let train = decoded[0..<index.train.count].map(\.sample)
        let val = decoded[index.train.count..<(index.train.count + index.val.count)].map(\.sample)
        let test = decoded[(index.train.count + index.val.count)...].map(\.sample)
        let notBinary = decoded.flatMap(\.notBinaryMasks)
        // JPEG masks are never exactly binary (compression artefacts): counted, not named.
        let lossy = notBinary.filter { $0.format == .jpeg }.count
        let named = notBinary.filter { $0.format != .jpeg }.map { root + "/" + $0.file }
        let resized = decoded.filter { $0.originalSize != nil }

        var warnings = index.warnings
        let rule = "thresholded above \(options.maskThreshold) of 255"
        for path in named.prefix(maxNamedWarnings) {
            warnings.append("\(path): mask is not binary (values between 0 and full scale); \(rule)")
        }
        if named.count > maxNamedWarnings {
            warnings.append("\(index.root): \(named.count - maxNamedWarnings) more masks are not binary; \(rule)")
        }
        if lossy > 0 {
            warnings.append("\(index.root): \(lossy) JPEG mask\(lossy == 1 ? "" : "s") hold compression artefacts (values between 0 and full scale); \(rule)")
        }
        if let first = resized.first, let original = first.originalSize {
            warnings.append("\(root)/\(first.imageFile): \(resized.count) of \(decoded.count) pairs resized to \(size)x\(size) (this one was \(original.width)x\(original.height))")
        }
        return LoadedDataset(index: index, train: train, val: val, test: test, warnings: warnings)
    }

    /// The dataset's files as sorted paths relative to `root` (see `DatasetIndex.files`); checks
    /// the structure as `scan` does, so a broken folder is reported before it is shipped anywhere.
    public static func files(root: String, options: DatasetOptions = DatasetOptions()) throws -> [String] {
        try scan(root: root, options: options).files
    }

    /// Whether a dataset's images are all gray, all colour, or both.
    public enum ColourKind: String, Sendable { case gray, colour, mixed }

    /// Whether every image of the dataset is gray (1 channel, or gray+alpha), every one colour, or
    /// both kinds occur. Reads file headers only, so it is cheap enough to choose a model's input
    /// channels before loading.
    public static func colourKind(index: DatasetIndex) throws -> ColourKind {
        let root = index.root, pairs = index.pairs
        let gray = try parallelMap(pairs.count) { i in try imageInfo(root + "/" + pairs[i].image).isGray }
        if gray.allSatisfy({ $0 }) { return .gray }
        return gray.contains(true) ? .mixed : .colour
    }

    /// What `ranksweep dataset check` prints beyond the split: sizes and kinds of images and masks.
    public struct Description: Sendable {
        /// "512x512" -> images of that size, most common first.
        public let imageSizes: [(size: String, count: Int)]
        /// "RGB 8-bit JPEG" -> images of that kind, most common first.
        public let imageKinds: [(kind: String, count: Int)]
        public let maskKinds: [(kind: String, count: Int)]
        /// Fewest and most mask files per image (more than one: instance masks, united).
        public let masksPerImage: ClosedRange<Int>
    }

    /// Reads the header of every image and mask of `index` (no pixels).
    public static func describe(_ index: DatasetIndex) throws -> Description {
        let root = index.root, pairs = index.pairs
        let infos = try parallelMap(pairs.count) { i -> (image: ImageInfo, masks: [ImageInfo]) in
            let image = try imageInfo(root + "/" + pairs[i].image)
            let masks = try pairs[i].masks.map { try imageInfo(root + "/" + $0) }
            return (image, masks)
        }
        let counts = pairs.map(\.masks.count)
        let sizes: [String] = infos.map { "\($0.image.width)x\($0.image.height)" }
        let imageKinds: [String] = infos.map(\.image.kind)
        let maskKinds: [String] = infos.flatMap { $0.masks.map(\.kind) }
        return Description(imageSizes: tally(sizes).map { (size: $0.0, count: $0.1) },
                           imageKinds: tally(imageKinds).map { (kind: $0.0, count: $0.1) },
                           maskKinds: tally(maskKinds).map { (kind: $0.0, count: $0.1) },
                           masksPerImage: (counts.min() ?? 0)...(counts.max() ?? 0))
    }

    /// Distinct keys with their counts, most common first (ties by key).
    private static func tally(_ keys: [String]) -> [(String, Int)] {
        var counts: [String: Int] = [:]
        for key in keys { counts[key, default: 0] += 1 }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    // MARK: - Internals

    private struct Decoded: Sendable {
        let sample: SegmentationSample
        let imageFile: String
        let notBinaryMasks: [(file: String, format: ImageFormat)]
        let originalSize: (width: Int, height: Int)?
    }

    private static func imageInfo(_ path: String) throws -> ImageInfo {
        do { return try ImageDecoder.info(path: path) } catch let error as ImageFileError { throw DatasetError.unreadable(error) }
    }

    /// Decodes one pair (uniting its instance masks), checks that image and masks agree in size,
    /// and resizes both to `size`.
    private static func decode(_ pair: ImageMaskPair, root: String, size: Int, channels: Int, threshold: Int) throws -> Decoded {
        let imagePath = root + "/" + pair.image
        var image: Tensor, mask: Tensor? = nil
        var notBinary: [(file: String, format: ImageFormat)] = []
        do {
            image = PNGCodec.convert(try ImageDecoder.decode(path: imagePath).tensor, toChannels: channels)
            for file in pair.masks {
                let path = root + "/" + file
                let decoded = try ImageDecoder.decode(path: path)
                let (one, wasBinary) = ImageDecoder.binarise(decoded.tensor, bitDepth: decoded.bitDepth, threshold: threshold)
                if !wasBinary { notBinary.append((file, decoded.format)) }
                if one.shape[0] != image.shape[0] || one.shape[1] != image.shape[1] {
                    throw DatasetError.sizeMismatch(image: imagePath, imageWidth: image.shape[1], imageHeight: image.shape[0],
                                                    mask: path, maskWidth: one.shape[1], maskHeight: one.shape[0])
                }
                mask = mask.map { united($0, one) } ?? one
            }
        } catch let error as ImageFileError {
            throw DatasetError.unreadable(error)
        }
        guard var mask else { preconditionFailure("DatasetLoader: pair \(pair.name) has no mask files") }
        var originalSize: (width: Int, height: Int)? = nil
        if image.shape[0] != size || image.shape[1] != size {
            originalSize = (image.shape[1], image.shape[0])
            image = Resize.image(image, height: size, width: size)
            mask = Resize.nearest(mask, height: size, width: size)
        }
        return Decoded(sample: SegmentationSample(name: pair.name, image: image, mask: mask),
                       imageFile: pair.image, notBinaryMasks: notBinary, originalSize: originalSize)
    }

    /// The union of two binary masks of one shape.
    static func united(_ a: Tensor, _ b: Tensor) -> Tensor {
        Tensor(shape: a.shape, storage: zip(a.storage, b.storage).map { max($0, $1) })
    }

    static func isDirectory(_ path: String) -> Bool {
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
