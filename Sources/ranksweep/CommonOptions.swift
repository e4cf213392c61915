import ArgumentParser
import Basics
import Engine
import Foundation
import Imaging
import Pipeline
import Sweep

/// Where the data comes from. Two-word flags also accept the seed pipeline's snake_case spelling.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-root"),
            help: "Dataset folder in any layout `dataset check` recognises (images/ + masks/, ISIC, BUSI, DSB2018, CVC-ClinicDB...). Default: the built-in synthetic set.")
    var dataRoot: String?
    @Option(name: .customLong("synthetic-count"), help: "Images in the synthetic set.") var syntheticCount = 200
    @Option(name: .customLong("split-seed"), help: "Seed of the train/val/test split.") var splitSeed: UInt64 = 42
    @OptionGroup var layout: DatasetLayoutOptions

    func validate() throws {
        guard syntheticCount >= 10 else { throw ValidationError("--synthetic-count must be at least 10, got \(syntheticCount)") }
    }

    var source: DataSource {
        var source = DataSource(root: dataRoot.map { UserPath.absolute($0) }, syntheticCount: syntheticCount, syntheticSeed: 1, splitSeed: splitSeed)
        source.datasetOptions = layout.options
        return source
    }
}

/// How a dataset folder's images and masks are found and binarised (`DatasetOptions`), for layouts
/// that are not recognised automatically and for masks that need another threshold.
struct DatasetLayoutOptions: ParsableArguments {
    @Option(name: .customLong("images-dir"),
            help: "Folder of the images, relative to the dataset folder (or to each train/val/test folder); turns layout detection off.")
    var imagesDir: String?
    @Option(name: .customLong("masks-dir"),
            help: "Folder of the masks, relative like --images-dir; the same folder as the images means masks beside images.")
    var masksDir: String?
    @Option(name: .customLong("mask-suffix"),
            help: "A mask's name is the image's plus this suffix (default: the same name, or plus _mask, _segmentation or _Segmentation).")
    var maskSuffix: String?
    @Option(name: .customLong("mask-threshold"),
            help: "Mask samples above this level of 255 are foreground (scaled for 16-bit).")
    var maskThreshold: Int = DatasetOptions.defaultMaskThreshold
    @Flag(name: .customLong("skip-unmatched"),
          help: "Skip images without a mask and masks without an image (and say how many) instead of stopping.")
    var skipUnmatched = false

    var options: DatasetOptions {
        DatasetOptions(imagesDir: imagesDir, masksDir: masksDir, maskSuffix: maskSuffix, maskThreshold: maskThreshold,
                       skipUnmatched: skipUnmatched)
    }

    func validate() throws {
        if let problem = options.problem { throw ValidationError(problem) }
    }
}

struct ThreadOptions: ParsableArguments {
    @Option(help: "Engine threads (default: all cores).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() { if let threads { BLAS.setThreads(threads) } }
}

/// A comma-separated list flag ("50,100,150"), parsed once by the argument parser (`ListFlag`'s
/// rules), so a bad value is a usage error (exit 64) naming the flag and the value.
struct ListOption<Element: Sendable>: Sendable, CustomStringConvertible {
    let values: [Element]
    var description: String { values.map { "\($0)" }.joined(separator: ",") }

    static func ints(_ flag: String) -> @Sendable (String) throws -> ListOption<Int> {
        { text in
            do { return ListOption<Int>(values: try ListFlag.ints(text, flag: flag)) } catch { throw ValidationError("\(error)") }
        }
    }

    static func fractions(_ flag: String) -> @Sendable (String) throws -> ListOption<Double> {
        { text in
            do { return ListOption<Double>(values: try ListFlag.doubles(text, flag: flag)) } catch { throw ValidationError("\(error)") }
        }
    }
}

extension ProgressDisplay.Mode: ExpressibleByArgument {}

/// `--progress` of the long single-machine commands (train, compress, evaluate), with the log level:
/// `-q` or `--log-level warn`/`error` keep only results, warnings and errors.
struct ProgressOptions: ParsableArguments {
    @Option(help: "Progress display: auto (a bar on a terminal, a dated line every few seconds otherwise), plain, none.")
    var progress: ProgressDisplay.Mode = .auto

    /// The display for this run; call after `LoggingOptions.apply()`.
    func display() -> ProgressDisplay {
        ProgressDisplay(mode: Log.level > .info ? .none : progress)
    }
}

/// Refuses to write a command's results over an earlier run's: `model.safetensors` in `outDir` is
/// replaced only with `--overwrite` (or when resuming that very run).
func checkOutDir(_ outDir: String, overwrite: Bool, flag: String = "--out-dir") throws {
    let existing = outDir + "/model.safetensors"
    guard !overwrite, FileManager.default.fileExists(atPath: existing) else { return }
    throw ValidationError("\(flag) \(outDir) already holds model.safetensors from an earlier run: give another \(flag), or --overwrite to replace it")
}
