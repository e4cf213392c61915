import Basics
import Foundation

/// TensorFlow measured on the same reference U-Net in the same run as the engine, by
/// `scripts/bench-tensorflow.py` in a Python that has TensorFlow (`make tensorflow` makes one).
/// The machines are noisy: a comparison only means something when both sides ran together.
public struct TensorFlowPeer: Sendable {
    /// What the script reports (its `--json` line).
    public struct Figures: Decodable, Sendable {
        public var model: String
        public var tensorflow: String
        public var parameters: Int
        public var batch: Int
        public var threads: Int
        public var trainStepSeconds: [Double]
        public var inferBatchSeconds: [Double]
        /// Process CPU seconds (all threads) of the same steps, as the engine measures its own.
        public var trainStepCPUSeconds: [Double]
        public var inferBatchCPUSeconds: [Double]
        public var peakRssMib: Double?

        enum CodingKeys: String, CodingKey {
            case model, tensorflow, parameters, batch, threads
            case trainStepSeconds = "train_step_seconds", inferBatchSeconds = "infer_batch_seconds", peakRssMib = "peak_rss_mib"
            case trainStepCPUSeconds = "train_step_cpu_seconds", inferBatchCPUSeconds = "infer_batch_cpu_seconds"
        }
    }

    public let python: String
    public let script: String

    /// Where `make tensorflow` puts its virtual environment.
    public static var defaultPython: String {
        FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/ranksweep/tf-venv/bin/python"
    }

    /// The peer to use: `python` if given, else $RANKSWEEP_TENSORFLOW_PYTHON, else the default
    /// environment when it exists; nil when there is none (the benchmark then quotes an earlier reference figure).
    public static func locate(python: String?, executable: String) throws -> TensorFlowPeer? {
        let chosen = python ?? ProcessInfo.processInfo.environment["RANKSWEEP_TENSORFLOW_PYTHON"]
        let candidate = chosen ?? defaultPython
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            if let chosen { throw PeerError("no Python at \(chosen) (run `make tensorflow`, or pass --tensorflow PYTHON)") }
            return nil
        }
        return TensorFlowPeer(python: candidate, script: try findScript(executable: executable))
    }

    /// `scripts/bench-tensorflow.py` of the checkout this binary was built in, or of the current directory.
    private static func findScript(executable: String) throws -> String {
        let relative = "scripts/bench-tensorflow.py"
        var dir = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<5 {
            let path = dir.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: path) { return path }
            dir = dir.deletingLastPathComponent()
        }
        let local = FileManager.default.currentDirectoryPath + "/" + relative
        guard FileManager.default.fileExists(atPath: local) else {
            throw PeerError("cannot find \(relative) beside \(executable) or in the current directory")
        }
        return local
    }

    /// Runs the script (`model` "small" or "paper") and returns its figures.
    public func measure(model: String, steps: Int, inferBatches: Int, threads: Int) throws -> Figures {
        // The peer must not inherit the engine's OpenBLAS settings.
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = nil
        environment["OPENBLAS_NUM_THREADS"] = nil
        let run: (stdout: String, stderr: String, code: Int32, signal: Int32?)
        do {
            run = try SpawnedChild.capture(path: python, arguments: [script, "--model", model, "--steps", "\(steps)", "--infer-batches", "\(inferBatches)",
                                                                     "--threads", "\(threads)", "--json"], environment: environment)
        } catch { throw PeerError("cannot start \(python): \(error)") }
        guard run.signal == nil, run.code == 0 else {
            let last = run.stderr.split(separator: "\n").last(where: { !$0.hasPrefix("I0000") && !$0.hasPrefix("WARNING") }) ?? ""
            throw PeerError("TensorFlow benchmark failed (\(python) \(script), status \(run.code)\(run.signal.map { ", signal \($0)" } ?? "")): \(last)")
        }
        guard let line = run.stdout.split(separator: "\n").last,
              let figures = try? JSONDecoder().decode(Figures.self, from: Data(line.utf8)) else {
            throw PeerError("TensorFlow benchmark printed no result line with wall and CPU times (\(script))")
        }
        return figures
    }

    public struct PeerError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }
}
