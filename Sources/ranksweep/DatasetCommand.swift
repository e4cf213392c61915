import ArgumentParser
import CommandLineOptions
import Foundation
import Imaging

/// `ranksweep dataset ...`: make the built-in synthetic set, or check a dataset folder before a
/// long run finds its problems for you.
struct Dataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make or check segmentation datasets (PNG, JPEG or TIFF images + masks).",
        subcommands: [Synth.self, Check.self]
    )
}

extension Dataset {
    /// `ranksweep dataset synth --out DIR --count N --size S --seed K [--gray]`.
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a synthetic lesion-segmentation set as DIR/images/NNNN.png + DIR/masks/NNNN.png.",
            discussion: "Deterministic by seed. The folder appears complete or not at all; an existing non-empty folder is refused."
        )

        @Option(name: [.customLong("out-dir"), .customLong("out")], help: "Folder to create (must not exist, or be empty).") var out: String
        @Option(help: "Number of image/mask pairs.") var count: Int = 200
        @Option(name: [.customLong("image-size"), .customLong("size")], help: "Side of the square images in pixels (a multiple of 16, at least 16).")
        var size: Int = 128
        @Option(help: "Random seed; the same seed writes the same pixels.") var seed: UInt64 = 42
        @Flag(help: "Write 8-bit gray images instead of RGB.") var gray = false

        func validate() throws {
            if count <= 0 { throw ValidationError("--count must be at least 1 (got \(count)).") }
            if size < 16 { throw ValidationError("--size must be at least 16 (got \(size)).") }
            if size % 16 != 0 {
                throw ValidationError("--size must be a multiple of 16 so the U-Net's four 2x poolings divide it (got \(size)).")
            }
        }

        func run() throws {
            let result = try SyntheticDataset.write(to: out, count: count, size: size, seed: seed, channels: gray ? 1 : 3)
            let kind = gray ? "gray" : "RGB"
            print("wrote \(result.pairs.count) \(size)x\(size) \(kind) image/mask pairs to \(out) (images/*.png, masks/*.png), seed \(seed)")
            print(String(format: "mean foreground %.1f%%, %d image(s) without a lesion",
                         result.meanForegroundFraction * 100, result.emptyMasks))
        }
    }

    /// `ranksweep dataset check DIR [--size S] [--gray] [--seed K] [--val-fraction F] [--test-fraction F]`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a dataset folder (every file decoded): its layout, pairs, image kinds, matching, skips and warnings.",
            discussion: """
            Layouts recognised: images/ + masks/ (mask X, X_mask, X_segmentation or X_Segmentation; Kvasir-SEG), \
            ISIC 2018 Task 1, BUSI, DSB2018 stage 1, CVC-ClinicDB; each also under train/ val/ test/ (used as given, \
            otherwise split by seed). Images and masks are PNG, JPEG or TIFF. For anything else: --images-dir, \
            --masks-dir, --mask-suffix.
            """
        )

        @Argument(help: "The dataset folder.") var root: String
        @Option(name: [.customLong("image-size"), .customLong("size")], help: "Model input side; files of another size are resized to it.")
        var size: Int = 128
        @Flag(help: "Load images as gray (1 channel) instead of RGB.") var gray = false
        @Option(name: [.customLong("split-seed"), .customLong("seed")], help: "Seed of the train/val/test split.") var seed: UInt64 = 42
        @Option(name: .customLong("val-fraction"), help: "Fraction of pairs for validation.") var valFraction: Double = 0.1
        @Option(name: .customLong("test-fraction"), help: "Fraction of pairs for testing.") var testFraction: Double = 0.1
        @OptionGroup var layout: DatasetLayoutOptions

        func validate() throws {
            if size < 16 || size % 16 != 0 { throw ValidationError("--size must be a multiple of 16, at least 16 (got \(size)).") }
            if !(0..<1).contains(valFraction) { throw ValidationError("--val-fraction must be in [0, 1) (got \(valFraction)).") }
            if !(0..<1).contains(testFraction) { throw ValidationError("--test-fraction must be in [0, 1) (got \(testFraction)).") }
            if valFraction + testFraction >= 1 {
                throw ValidationError("--val-fraction plus --test-fraction must leave some pairs for training (got \(valFraction + testFraction)).")
            }
        }

        func run() throws {
            let fractions = SplitFractions(train: 1 - valFraction - testFraction, val: valFraction, test: testFraction)
            let start = Date()
            let options = layout.options
            let index = try DatasetLoader.scan(root: root, fractions: fractions, seed: seed, options: options)
            let about = try DatasetLoader.describe(index)
            for line in about.reportLines(index) { print(line) }
            let data = try DatasetLoader.load(root: root, size: size, channels: gray ? 1 : 3, fractions: fractions, seed: seed, options: options)
            for warning in data.warnings { print("warning: \(warning)") }
            print(String(format: "ok: %d files decoded in %.2f s", data.index.files.count, Date().timeIntervalSince(start)))
        }
    }
}
