import Foundation

/// TensorFlow measured on the same reference U-Net in the same run as the engine, by
/// `scripts/bench-tensorflow.py` in a Python that has TensorFlow (`make tensorflow` makes one).
/// The machines are noisy: a comparison only means something when both sides ran together.
struct TensorFlowPeer {
    /// What the script reports (its `--json` line).
    struct Figures: Decodable {
        var model: String
        var tensorflow: String
        var parameters: Int
        var batch: Int
        var threads: Int
        var trainStepSeconds: [Double]
        var inferBatchSeconds: [Double]
        /// Process CPU seconds (all threads) of the same steps, as the engine measures its own.
        var trainStepCPUSeconds: [Double]
        var inferBatchCPUSeconds: [Double]
        var peakRssMib: Double?

        enum CodingKeys: String, CodingKey {
            case model, tensorflow, parameters, batch, threads
            case trainStepSeconds = "train_step_seconds", inferBatchSeconds = "infer_batch_seconds", peakRssMib = "peak_rss_mib"
            case trainStepCPUSeconds = "train_step_cpu_seconds", inferBatchCPUSeconds = "infer_batch_cpu_seconds"
        }
    }

    let python: String
    let script: String

    /// Where `make tensorflow` puts its virtual environment.
    static var defaultPython: String {
        FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/ranksweep/tf-venv/bin/python"
    }

    /// The peer to use: `python` if given, else $RANKSWEEP_TENSORFLOW_PYTHON, else the default
    /// environment when it exists; nil when there is none (the benchmark then quotes an earlier reference figure).
    static func locate(python: String?) throws -> TensorFlowPeer? {
        let chosen = python ?? ProcessInfo.processInfo.environment["RANKSWEEP_TENSORFLOW_PYTHON"]
        let candidate = chosen ?? defaultPython
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            if let chosen { throw PeerError("no Python at \(chosen) (run `make tensorflow`, or pass --tensorflow PYTHON)") }
            return nil
        }
        return TensorFlowPeer(python: candidate, script: try findScript())
    }

    /// `scripts/bench-tensorflow.py` of the checkout this binary was built in, or of the current directory.
    private static func findScript() throws -> String {
        let relative = "scripts/bench-tensorflow.py"
        var dir = URL(fileURLWithPath: SweepCLI.executable).deletingLastPathComponent()
        for _ in 0..<5 {
            let path = dir.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: path) { return path }
            dir = dir.deletingLastPathComponent()
        }
        let local = FileManager.default.currentDirectoryPath + "/" + relative
        guard FileManager.default.fileExists(atPath: local) else {
            throw PeerError("cannot find \(relative) beside \(SweepCLI.executable) or in the current directory")
        }
        return local
    }

    /// Runs the script (`model` "small" or "paper") and returns its figures.
    func measure(model: String, steps: Int, inferBatches: Int, threads: Int) throws -> Figures {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--model", model, "--steps", "\(steps)", "--infer-batches", "\(inferBatches)",
                             "--threads", "\(threads)", "--json"]
        // The peer must not inherit the engine's OpenBLAS settings.
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = nil
        environment["OPENBLAS_NUM_THREADS"] = nil
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { throw PeerError("cannot start \(python): \(error)") }
        // Read stderr on another thread so that neither pipe fills while the other is read.
        let errorText = ErrorCollector()
        let reader = Thread { errorText.set(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) }
        reader.start()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        while !errorText.done { usleep(1000) }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let last = errorText.text.split(separator: "\n").last(where: { !$0.hasPrefix("I0000") && !$0.hasPrefix("WARNING") }) ?? ""
            throw PeerError("TensorFlow benchmark failed (\(python) \(script), status \(process.terminationStatus)): \(last)")
        }
        guard let line = output.split(separator: "\n").last,
              let figures = try? JSONDecoder().decode(Figures.self, from: Data(line.utf8)) else {
            throw PeerError("TensorFlow benchmark printed no result line with wall and CPU times (\(script))")
        }
        return figures
    }

    struct PeerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// The peer's stderr, filled by a reader thread.
private final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    private var finished = false

    func set(_ text: String) { lock.lock(); value = text; finished = true; lock.unlock() }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return finished }
    var text: String { lock.lock(); defer { lock.unlock() }; return value }
}
