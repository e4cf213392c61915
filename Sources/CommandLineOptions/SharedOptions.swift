// The option groups several commands share. A library, not the executable, so that parsing and
// validating them can be tested without starting a process (CommandLineOptionsTests).
import ArgumentParser
import Basics
import Engine
import Foundation
import Pipeline
import Sweep

/// Where the data comes from. Two-word flags also accept the seed pipeline's snake_case spelling.
public struct DataOptions: ParsableArguments {
    public init() {}
    @Option(name: .customLong("data-root"),
            help: "Dataset folder in any layout `dataset check` recognises (images/ + masks/, ISIC, BUSI, DSB2018, CVC-ClinicDB...). Default: the built-in synthetic set.")
    public var dataRoot: String?
    @Option(name: .customLong("synthetic-count"), help: "Images in the synthetic set.") public var syntheticCount = 200
    @Option(name: .customLong("split-seed"), help: "Seed of the train/val/test split.") public var splitSeed: UInt64 = 42
    @OptionGroup public var layout: DatasetLayoutOptions

    public func validate() throws {
        guard syntheticCount >= 10 else { throw ValidationError("--synthetic-count must be at least 10, got \(syntheticCount)") }
    }

    public var source: DataSource {
        var source = DataSource(root: dataRoot.map { UserPath.absolute($0) }, syntheticCount: syntheticCount, syntheticSeed: 1, splitSeed: splitSeed)
        source.datasetOptions = layout.options
        return source
    }
}

/// How a dataset folder's images and masks are found and binarised (`DatasetOptions`), for layouts
/// that are not recognised automatically and for masks that need another threshold.
public struct DatasetLayoutOptions: ParsableArguments {
    public init() {}
    @Option(name: .customLong("images-dir"),
            help: "Folder of the images, relative to the dataset folder (or to each train/val/test folder); turns layout detection off.")
    public var imagesDir: String?
    @Option(name: .customLong("masks-dir"),
            help: "Folder of the masks, relative like --images-dir; the same folder as the images means masks beside images.")
    public var masksDir: String?
    @Option(name: .customLong("mask-suffix"),
            help: "A mask's name is the image's plus this suffix (default: the same name, or plus _mask, _segmentation or _Segmentation).")
    public var maskSuffix: String?
    @Option(name: .customLong("mask-threshold"),
            help: "Mask samples above this level of 255 are foreground (scaled for 16-bit).")
    public var maskThreshold: Int = DatasetOptions.defaultMaskThreshold
    @Flag(name: .customLong("skip-unmatched"),
          help: "Skip images without a mask and masks without an image (and say how many) instead of stopping.")
    public var skipUnmatched = false

    public var options: DatasetOptions {
        DatasetOptions(imagesDir: imagesDir, masksDir: masksDir, maskSuffix: maskSuffix, maskThreshold: maskThreshold,
                       skipUnmatched: skipUnmatched)
    }

    public func validate() throws {
        if let problem = options.problem { throw ValidationError(problem) }
    }
}

public struct ThreadOptions: ParsableArguments {
    public init() {}
    @Option(help: "Engine threads (default: all cores).") public var threads: Int?

    public func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    public func apply() { if let threads { BLAS.setThreads(threads) } }
}

/// A comma-separated list flag ("50,100,150"), parsed once by the argument parser (`ListFlag`'s
/// rules), so a bad value is a usage error (exit 64) naming the flag and the value.
public struct ListOption<Element: Sendable>: Sendable, CustomStringConvertible {
    public let values: [Element]
    public init(values: [Element]) { self.values = values }
    public var description: String { values.map { "\($0)" }.joined(separator: ",") }

    public static func ints(_ flag: String) -> @Sendable (String) throws -> ListOption<Int> {
        { text in
            do { return ListOption<Int>(values: try ListFlag.ints(text, flag: flag)) } catch { throw ValidationError("\(error)") }
        }
    }

    public static func fractions(_ flag: String) -> @Sendable (String) throws -> ListOption<Double> {
        { text in
            do { return ListOption<Double>(values: try ListFlag.doubles(text, flag: flag)) } catch { throw ValidationError("\(error)") }
        }
    }
}

extension ProgressDisplay.Mode: ExpressibleByArgument {}

/// `--progress` of the long single-machine commands (train, compress, evaluate), with the log level:
/// `-q` or `--log-level warn`/`error` keep only results, warnings and errors.
public struct ProgressOptions: ParsableArguments {
    public init() {}
    @Option(help: "Progress display: auto (a bar on a terminal, a dated line every few seconds otherwise), plain, none.")
    public var progress: ProgressDisplay.Mode = .auto

    /// The display for this run; call after `LoggingOptions.apply()`.
    public func display() -> ProgressDisplay {
        ProgressDisplay(mode: Log.level > .info ? .none : progress)
    }
}

/// Log verbosity, on every command. Child processes (local workers, job children) inherit it
/// through RANKSWEEP_LOG_LEVEL.
public struct LoggingOptions: ParsableArguments {
    public init() {}
    @Option(name: .customLong("log-level"), help: "debug, info, warn or error (default info).") public var logLevel: String?
    @Flag(name: .shortAndLong, help: "Only warnings and errors (same as --log-level warn).") public var quiet = false
    @Flag(name: .shortAndLong, help: "Debug detail (same as --log-level debug).") public var verbose = false

    public func validate() throws {
        if let logLevel, Log.Level(name: logLevel) == nil {
            throw ValidationError("--log-level must be debug, info, warn or error, got '\(logLevel)'")
        }
        if quiet && verbose { throw ValidationError("give -q or -v, not both") }
    }

    /// Sets the level for this process and its children.
    public func apply() {
        if let level = logLevel.flatMap(Log.Level.init(name:)) ?? (quiet ? .warn : verbose ? .debug : nil) { Log.setLevelForThisProcessAndChildren(level) }
    }
}

/// Heartbeat flags shared by coordinator, worker and run (tests use short ones).
public struct TimingOptions: ParsableArguments {
    public init() {}
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in ms (default 1000, env RANKSWEEP_HEARTBEAT_MS).") public var heartbeatMs: Int?
    @Option(help: "Missed heartbeats before a peer is dead (default 5, env RANKSWEEP_LIVENESS).") public var liveness: Int?

    public func validate() throws {
        if let h = heartbeatMs, h < 10 || h > 600_000 { throw ValidationError("--heartbeat-ms must be in 10...600000") }
        if let l = liveness, l < 1 || l > 1000 { throw ValidationError("--liveness must be in 1...1000") }
    }

    public var timing: Timing {
        var t = Timing.fromEnvironment()
        if let h = heartbeatMs { t.heartbeatMs = h }
        if let l = liveness { t.liveness = l }
        return t
    }
}


/// The live report's throttle, shared by coordinator and run.
public struct ReportOptions: ParsableArguments {
    public init() {}
    @Option(name: .customLong("report-interval"), help: "Refresh STATE_DIR/report at most every this many seconds while the sweep runs, when new results arrived.")
    public var reportInterval: Double = 30

    public func validate() throws {
        if !(reportInterval >= 1 && reportInterval <= 86_400) { throw ValidationError("--report-interval must be in 1...86400 seconds") }
    }
}

/// Refuses to write a command's results over an earlier run's: `model.safetensors` in `outDir` is
/// replaced only with `--overwrite` (or when resuming that very run).
public func checkOutDir(_ outDir: String, overwrite: Bool, flag: String = "--out-dir") throws {
    let existing = outDir + "/model.safetensors"
    guard !overwrite, FileManager.default.fileExists(atPath: existing) else { return }
    throw ValidationError("\(flag) \(outDir) already holds model.safetensors from an earlier run: give another \(flag), or --overwrite to replace it")
}
