import Foundation

/// The `ranksweep` binary the tests run, found beside the test runner of the same build (so a
/// debug test run gets the debug binary, a release run the release one), and refused when it is
/// older than a source file: a test must never pass or fail on an old binary.
public enum BuiltBinary {
    /// The package's root folder.
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The path of the binary; stops the test run with one clear line when it is missing or stale.
    public static let ranksweep: String = {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: runner).deletingLastPathComponent().appendingPathComponent("ranksweep").path
        if let problem = problem(binary: path) {
            FileHandle.standardError.write(Data("error: \(problem)\n".utf8))
            fatalError(problem)
        }
        return path
    }()

    /// Why the binary at `binary` cannot be trusted (nil: it can).
    public static func problem(binary: String, sources: String = packageRoot + "/Sources") -> String? {
        guard let built = modified(binary) else {
            return "no ranksweep binary at \(binary): build it with the tests (`swift build --build-tests`, or `make test`)"
        }
        let newer = FileManager.default.enumerator(atPath: sources)?.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") || $0.hasSuffix(".c") || $0.hasSuffix(".h") }
            .first { (modified(sources + "/" + $0) ?? .distantPast) > built }
        return newer.map { "\(binary) is older than Sources/\($0): rebuild before testing (`swift build --build-tests`)" }
    }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

/// How loaded this machine is, as one factor that stretches the tests' timing windows (heartbeat
/// liveness, waits for something to happen): 1 on an idle machine, up to 4 when the load average
/// is several times the cores. `RANKSWEEP_TEST_LOAD_FACTOR` sets it.
public enum TestLoad {
    public static let factor: Double = {
        if let given = ProcessInfo.processInfo.environment["RANKSWEEP_TEST_LOAD_FACTOR"].flatMap(Double.init), given >= 1 { return min(given, 10) }
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        let load = text.split(separator: " ").first.flatMap { Double($0) } ?? 0
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        return min(4, max(1, (load / cores).rounded(.up)))
    }()

    /// `seconds` stretched by the factor.
    public static func seconds(_ seconds: Double) -> Double { seconds * factor }
}
