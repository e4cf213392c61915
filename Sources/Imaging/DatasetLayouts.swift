import Basics
import Foundation

/// Finds image/mask pairs in the folder layouts of public segmentation datasets (no decoding).
///
/// A dataset root holds one layout, or `train/`, `val/` and optionally `test/` folders each holding
/// one (ISIC 2018 names its own parts `*_Training_*`, `*_Validation_*`, `*_Test_*`):
///
/// | layout | images | masks |
/// |---|---|---|
/// | images/ + masks/ (Kvasir-SEG) | `images/X.ext` | `masks/X.ext`, `X_mask`, `X_segmentation`, `X_Segmentation` |
/// | ISIC 2018 Task 1 | `*_Training_Input/ISIC_n.jpg` | `*_Training_GroundTruth/ISIC_n_segmentation.png` |
/// | BUSI | `class/name.png` | `class/name_mask.png`, `class/name_mask_1.png`... (united) |
/// | DSB2018 stage 1 | `ID/images/ID.png` | `ID/masks/*.png` (united) |
/// | CVC-ClinicDB | `Original/N.tif` | `Ground Truth/N.tif` |
/// | explicit | `--images-dir` | `--masks-dir`, `--mask-suffix` |
///
/// `.ext` is any of png, jpg, jpeg, tif, tiff, in any case, on either side. Hidden files and OS
/// junk are ignored, notes (`.txt`, `.csv`...) are listed as ignored; any other file is an error.
enum DatasetLayouts {
    /// The mask-stem suffixes tried when none is given, in order.
    static let defaultSuffixes = ["", "_mask", "_segmentation", "_Segmentation"]
    /// BUSI's mask suffix; further instance masks add `_1`, `_2`...
    static let besideSuffix = "_mask"

    /// The pairs found in one folder of one layout.
    struct PartScan {
        var kind: DatasetKind
        var pairs: [ImageMaskPair] = []
        var matching: [String: Int] = [:]
        var unmatched: [Unmatched] = []
        var ignored: [String] = []
    }

    /// An image without a mask or a mask without an image: an error, or skipped on request.
    struct Unmatched {
        let error: DatasetError
        let skipped: SkippedFile
        let isImage: Bool
    }

    struct Part {
        /// "" for a dataset split by seed, else "train", "val" or "test".
        let split: String
        /// Folder of the part relative to the root, with a trailing slash ("" for the root itself).
        let prefix: String
        let scan: PartScan
    }

    struct Found {
        let parts: [Part]
        let presplit: Bool
        let warnings: [String]
    }

    static func find(root: String, options: DatasetOptions) throws -> Found {
        if !options.hasExplicitFolders, let isic = try isicParts(root: root, options: options) { return isic }
        let splitNames = ["train", "val", "test"]
        let present = splitNames.filter { DatasetLoader.isDirectory(root + "/" + $0) }
        if present.isEmpty {
            return Found(parts: [Part(split: "", prefix: "", scan: try scanPart(root: root, prefix: "", options: options))],
                         presplit: false, warnings: [])
        }
        let flatFolders = options.hasExplicitFolders ? [options.imagesDir ?? "images", options.masksDir ?? "masks"]
            : ["images", "masks", "Original", "Ground Truth"]
        if flatFolders.contains(where: { DatasetLoader.isDirectory(root + "/" + $0) }) { throw DatasetError.mixedLayout(root: root) }
        for required in ["train", "val"] where !present.contains(required) {
            throw DatasetError.missingFolder(path: root + "/" + required,
                                             expected: "a pre-split dataset needs train/ and val/, each holding one layout")
        }
        var warnings: [String] = []
        if !present.contains("test") { warnings.append("\(root)/test: no test folder; the test split is empty") }
        let parts = try present.map { Part(split: $0, prefix: $0 + "/", scan: try scanPart(root: root, prefix: $0 + "/", options: options)) }
        return Found(parts: parts, presplit: true, warnings: warnings)
    }

    /// ISIC 2018 Task 1: `<x>_Training_Input` with `<y>_Training_GroundTruth`, and the same for
    /// Validation and Test. Only Training: split by seed; with Validation: used as given.
    private static func isicParts(root: String, options: DatasetOptions) throws -> Found? {
        let folders = try subfolders(root)
        let inputs = [("Training", "train"), ("Validation", "val"), ("Test", "test")].compactMap { isicName, split -> (String, String, String)? in
            guard let input = folders.first(where: { $0.hasSuffix("_\(isicName)_Input") }) else { return nil }
            return (isicName, split, input)
        }
        if inputs.isEmpty { return nil }
        var parts: [Part] = []
        let splitByIsic = !(inputs.count == 1 && inputs[0].0 == "Training")
        for (isicName, split, input) in inputs {
            guard let truth = folders.first(where: { $0.hasSuffix("_\(isicName)_GroundTruth") }) else {
                throw DatasetError.missingFolder(path: root + "/" + input.replacingOccurrences(of: "_Input", with: "_GroundTruth"),
                                                 expected: "ISIC 2018: the masks of \(input)/ are in a *_\(isicName)_GroundTruth folder beside it")
            }
            var scan = PartScan(kind: .isic2018)
            try matchFolders(root: root, images: input, masks: truth, suffixes: suffixes(options), into: &scan)
            parts.append(Part(split: splitByIsic ? split : "", prefix: "", scan: scan))
        }
        if splitByIsic && !inputs.contains(where: { $0.0 == "Training" }) {
            throw DatasetError.missingFolder(path: root + "/ISIC2018_Task1-2_Training_Input",
                                             expected: "ISIC 2018: a *_Training_Input folder is needed beside \(inputs[0].2)")
        }
        var warnings: [String] = []
        if splitByIsic && !inputs.contains(where: { $0.0 == "Validation" }) {
            throw DatasetError.missingFolder(path: root + "/ISIC2018_Task1-2_Validation_Input",
                                             expected: "ISIC 2018: with a Test part, a *_Validation_Input folder is needed too")
        }
        if splitByIsic && !inputs.contains(where: { $0.0 == "Test" }) {
            warnings.append("\(root): no *_Test_Input folder; the test split is empty")
        }
        return Found(parts: parts, presplit: splitByIsic, warnings: warnings)
    }

    /// One part (the root or a train/val/test folder): the explicit folders, or the first layout
    /// whose folders are there.
    private static func scanPart(root: String, prefix: String, options: DatasetOptions) throws -> PartScan {
        let here = root + "/" + prefix
        func exists(_ folder: String) -> Bool { DatasetLoader.isDirectory(here + folder) }
        if options.hasExplicitFolders {
            let images = options.imagesDir ?? "images", masks = options.masksDir ?? "masks"
            var scan = PartScan(kind: .explicit)
            if normalisedFolder(images) == normalisedFolder(masks) {
                try matchBeside(root: root, folder: inPart(prefix, normalisedFolder(images)), suffix: options.maskSuffix ?? besideSuffix, into: &scan)
            } else {
                try matchFolders(root: root, images: inPart(prefix, normalisedFolder(images)), masks: inPart(prefix, normalisedFolder(masks)),
                                 suffixes: suffixes(options), into: &scan)
            }
            return scan
        }
        if exists("images") || exists("masks") {
            var scan = PartScan(kind: .imagesMasks)
            try matchFolders(root: root, images: prefix + "images", masks: prefix + "masks", suffixes: suffixes(options), into: &scan)
            return scan
        }
        if exists("Original") || exists("Ground Truth") {
            var scan = PartScan(kind: .cvcClinicDB)
            try matchFolders(root: root, images: prefix + "Original", masks: prefix + "Ground Truth", suffixes: suffixes(options), into: &scan)
            return scan
        }
        let folders = try subfolders(String(here.dropLast()))
        if folders.contains(where: { DatasetLoader.isDirectory(here + $0 + "/images") }) {
            return try scanDSB(root: root, prefix: prefix, folders: folders)
        }
        let suffix = options.maskSuffix ?? besideSuffix
        if folders.isEmpty, try holdsMasksBeside(String(here.dropLast()), suffix: suffix) {
            // One folder of name.png beside name_mask.png: a BUSI class folder on its own.
            var scan = PartScan(kind: .busi)
            try matchBeside(root: root, folder: String(prefix.dropLast()), suffix: suffix, into: &scan)
            return scan
        }
        if try folders.contains(where: { try holdsMasksBeside(here + $0, suffix: suffix) }) {
            var scan = PartScan(kind: .busi)
            try checkOnlyFolders(root: root, prefix: prefix, expected: "BUSI: class folders holding name.png beside name_mask.png", into: &scan)
            for folder in folders { try matchBeside(root: root, folder: inPart(prefix, folder), suffix: suffix, into: &scan) }
            return scan
        }
        throw DatasetError.unrecognisedLayout(root: String(here.dropLast()))
    }

    /// DSB2018 stage 1: every sub-folder `ID` holds `images/ID.png` (one image) and `masks/*.png`
    /// (one file per nucleus, united).
    private static func scanDSB(root: String, prefix: String, folders: [String]) throws -> PartScan {
        var scan = PartScan(kind: .dsb2018)
        let expected = "DSB2018: sample folders ID/ holding images/ID.png and masks/*.png"
        try checkOnlyFolders(root: root, prefix: prefix, expected: expected, into: &scan)
        for id in folders {
            let sample = prefix + id
            guard DatasetLoader.isDirectory(root + "/" + sample + "/images") else {
                throw DatasetError.unexpectedEntry(path: root + "/" + sample, expected: expected)
            }
            let images = try listImages(root: root, folder: sample + "/images", into: &scan)
            guard images.count == 1, let image = images.first?.value else {
                throw DatasetError.unexpectedEntry(path: root + "/" + sample + "/images",
                                                   expected: "DSB2018: images/ holds one image, found \(images.count)")
            }
            let imagePath = sample + "/images/" + image
            var masks: [String] = []
            if DatasetLoader.isDirectory(root + "/" + sample + "/masks"),
               try FileManager.default.contentsOfDirectory(atPath: root + "/" + sample + "/masks").contains(where: { !$0.hasPrefix(".") }) {
                masks = try listImages(root: root, folder: sample + "/masks", into: &scan).values.sorted().map { sample + "/masks/" + $0 }
            }
            if masks.isEmpty {
                scan.unmatched.append(imageWithoutMask(root: root, image: imagePath, looked: sample + "/masks/*.{png,jpg,tif}"))
                continue
            }
            scan.pairs.append(ImageMaskPair(name: id, image: imagePath, masks: masks))
            scan.matching["ID/masks/* united", default: 0] += 1
        }
        return scan
    }

    /// Pairs the images of `images` with the masks of `masks` (relative to the root): a mask's stem
    /// is the image's plus one of `suffixes`.
    static func matchFolders(root: String, images imagesFolder: String, masks masksFolder: String, suffixes: [String],
                             into scan: inout PartScan) throws {
        let expectedFolders = "expected \(imagesFolder)/ and \(masksFolder)/ side by side, holding image files"
        guard DatasetLoader.isDirectory(root + "/" + imagesFolder) else { throw DatasetError.missingFolder(path: root + "/" + imagesFolder, expected: expectedFolders) }
        guard DatasetLoader.isDirectory(root + "/" + masksFolder) else { throw DatasetError.missingFolder(path: root + "/" + masksFolder, expected: expectedFolders) }
        let images = try listImages(root: root, folder: imagesFolder, into: &scan)
        let masks = try listImages(root: root, folder: masksFolder, into: &scan)
        var maskOf: [String: (file: String, suffix: String)] = [:]   // image stem -> mask
        var orphans: [String] = []
        for (stem, file) in masks.sorted(by: { $0.key < $1.key }) {
            let match = suffixes.lazy.compactMap { suffix -> (String, String)? in
                guard stem.hasSuffix(suffix) else { return nil }
                let base = String(stem.dropLast(suffix.count))
                return images[base] != nil ? (base, suffix) : nil
            }.first
            guard let (base, suffix) = match else { orphans.append(file); continue }
            if let other = maskOf[base] {
                throw DatasetError.ambiguousMask(image: root + "/" + joined(imagesFolder, images[base]!),
                                                 masks: [other.file, file].sorted().map { root + "/" + joined(masksFolder, $0) })
            }
            maskOf[base] = (file, suffix)
        }
        for (stem, file) in images.sorted(by: { $0.key < $1.key }) {
            guard let mask = maskOf[stem] else {
                scan.unmatched.append(imageWithoutMask(root: root, image: joined(imagesFolder, file),
                                                       looked: pattern(folder: masksFolder, stem: stem, suffixes: suffixes)))
                continue
            }
            scan.pairs.append(ImageMaskPair(name: stem, image: joined(imagesFolder, file), masks: [joined(masksFolder, mask.file)]))
            scan.matching[mask.suffix.isEmpty ? "same stem" : "stem + \(mask.suffix)", default: 0] += 1
        }
        for file in orphans {
            let stem = (file as NSString).deletingPathExtension
            let bases = Set(suffixes.filter { stem.hasSuffix($0) }.map { String(stem.dropLast($0.count)) })
            scan.unmatched.append(maskWithoutImage(root: root, mask: joined(masksFolder, file),
                                                   looked: bases.sorted().map { pattern(folder: imagesFolder, stem: $0, suffixes: [""]) }.joined(separator: " or ")))
        }
    }

    /// Pairs images and masks that sit side by side in one folder (BUSI): `X.png` with `X<suffix>.png`
    /// and further instance masks `X<suffix>_1.png`, `X<suffix>_2.png`... (united).
    static func matchBeside(root: String, folder: String, suffix: String, into scan: inout PartScan) throws {
        guard DatasetLoader.isDirectory(joined(root, folder)) else {
            throw DatasetError.missingFolder(path: joined(root, folder), expected: "expected a folder of images with their masks beside them")
        }
        let files = try listImages(root: root, folder: folder, into: &scan)
        var images: [String: String] = [:], masks: [String: [String]] = [:]
        for (stem, file) in files {
            if let base = maskBase(stem, suffix: suffix) { masks[base, default: []].append(file) } else { images[stem] = file }
        }
        for (stem, file) in images.sorted(by: { $0.key < $1.key }) {
            guard let found = masks.removeValue(forKey: stem) else {
                scan.unmatched.append(imageWithoutMask(root: root, image: joined(folder, file),
                                                       looked: pattern(folder: folder, stem: stem, suffixes: [suffix])))
                continue
            }
            // X_mask before X_mask_1 before X_mask_2... before X_mask_10.
            let ordered = found.sorted { instanceNumber($0, suffix: suffix) < instanceNumber($1, suffix: suffix) }
            scan.pairs.append(ImageMaskPair(name: stem, image: joined(folder, file), masks: ordered.map { joined(folder, $0) }))
            scan.matching[found.count == 1 ? "stem + \(suffix) beside the image" : "stem + \(suffix), \(suffix)_N beside the image (instance masks united)", default: 0] += 1
        }
        for (base, files) in masks.sorted(by: { $0.key < $1.key }) {
            for file in files.sorted() {
                scan.unmatched.append(maskWithoutImage(root: root, mask: joined(folder, file), looked: pattern(folder: folder, stem: base, suffixes: [""])))
            }
        }
    }

    // MARK: - Helpers

    /// Whether `path` holds an image file named like a mask beside its image (`X_mask.png`).
    private static func holdsMasksBeside(_ path: String, suffix: String) throws -> Bool {
        try names(path).contains { name in
            maskBase((name as NSString).deletingPathExtension, suffix: suffix) != nil
                && ImageFormat.fileExtensions.contains((name as NSString).pathExtension.lowercased())
        }
    }

    private static func suffixes(_ options: DatasetOptions) -> [String] {
        options.maskSuffix.map { [$0] } ?? defaultSuffixes
    }

    /// The image stem a mask stem belongs to when it is `base + suffix` or `base + suffix + _N`.
    static func maskBase(_ stem: String, suffix: String) -> String? {
        guard !suffix.isEmpty else { return nil }
        if stem.hasSuffix(suffix), stem.count > suffix.count { return String(stem.dropLast(suffix.count)) }
        guard let underscore = stem.lastIndex(of: "_") else { return nil }
        let number = stem[stem.index(after: underscore)...]
        guard !number.isEmpty, number.allSatisfy(\.isASCII), number.allSatisfy(\.isNumber) else { return nil }
        let head = String(stem[..<underscore])
        return head.hasSuffix(suffix) && head.count > suffix.count ? String(head.dropLast(suffix.count)) : nil
    }

    private static func instanceNumber(_ file: String, suffix: String) -> Int {
        let stem = (file as NSString).deletingPathExtension
        if stem.hasSuffix(suffix) { return 0 }
        return Int(stem[stem.index(after: stem.lastIndex(of: "_")!)...]) ?? Int.max
    }

    /// "masks/X{,_mask,_segmentation}.{png,jpg,jpeg,tif,tiff}".
    private static func pattern(folder: String, stem: String, suffixes: [String]) -> String {
        let names = suffixes.count == 1 ? stem + suffixes[0] : stem + "{" + suffixes.joined(separator: ",") + "}"
        return joined(folder, names) + ".{png,jpg,jpeg,tif,tiff}"
    }

    private static func imageWithoutMask(root: String, image: String, looked: String) -> Unmatched {
        Unmatched(error: .missingMask(image: root + "/" + image, expected: looked),
                  skipped: SkippedFile(path: image, reason: "image without a mask (looked for \(looked))"), isImage: true)
    }

    private static func maskWithoutImage(root: String, mask: String, looked: String) -> Unmatched {
        Unmatched(error: .maskWithoutImage(mask: root + "/" + mask, expected: looked),
                  skipped: SkippedFile(path: mask, reason: "mask without an image (looked for \(looked))"), isImage: false)
    }

    /// `folder/name`, or `name` for the empty folder (the root itself).
    static func joined(_ folder: String, _ name: String) -> String {
        folder.isEmpty ? name : name.isEmpty ? folder : folder + "/" + name
    }

    /// `folder` inside the part `prefix` ("" or "train/"), without a trailing slash.
    private static func inPart(_ prefix: String, _ folder: String) -> String { joined(String(prefix.dropLast()), folder) }

    private static func normalisedFolder(_ folder: String) -> String {
        folder.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    /// The visible sub-folders of `path`, sorted.
    private static func subfolders(_ path: String) throws -> [String] {
        try names(path).filter { DatasetLoader.isDirectory(path + "/" + $0) }
    }

    /// The visible entries of `path`, sorted (hidden files and OS junk left out).
    private static func names(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { !$0.hasPrefix(".") && !DatasetLoader.ignoredNames.contains($0) }.sorted()
        } catch {
            throw DatasetError.fileSystem(path: path, reason: "cannot list folder: \(error.localizedDescription)")
        }
    }

    /// For layouts made of sample or class folders: notes beside them are ignored, anything else is an error.
    private static func checkOnlyFolders(root: String, prefix: String, expected: String, into scan: inout PartScan) throws {
        let here = root + "/" + prefix
        for name in try names(String(here.dropLast())) where !DatasetLoader.isDirectory(here + name) {
            guard DatasetLoader.noteExtensions.contains((name as NSString).pathExtension.lowercased()) else {
                throw DatasetError.unexpectedEntry(path: here + name, expected: expected)
            }
            scan.ignored.append(prefix + name)
        }
    }

    /// The image files of `folder` (relative to the root) by stem; notes go to `scan.ignored`.
    /// Throws for an empty folder, a sub-folder, another kind of file, or two images sharing a stem.
    static func listImages(root: String, folder: String, into scan: inout PartScan) throws -> [String: String] {
        let path = joined(root, folder)
        var byStem: [String: String] = [:]
        for name in try names(path) {
            let full = path + "/" + name
            if DatasetLoader.isDirectory(full) { throw DatasetError.unexpectedFolder(path: full) }
            let ext = (name as NSString).pathExtension.lowercased()
            if DatasetLoader.noteExtensions.contains(ext) { scan.ignored.append(joined(folder, name)); continue }
            guard ImageFormat.fileExtensions.contains(ext) else { throw DatasetError.notAnImage(path: full) }
            let stem = (name as NSString).deletingPathExtension
            if let first = byStem[stem] { throw DatasetError.duplicateStem(first: path + "/" + first, second: full) }
            byStem[stem] = name
        }
        if byStem.isEmpty { throw DatasetError.emptyFolder(path: path) }
        return byStem
    }
}
