import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TestSupport
import XCTest
@testable import Reports
@testable import Sweep

/// The built binary and a small finished sweep made once for all tests (about 2-3 s).
enum Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let binary = BuiltBinary.ranksweep

    /// Tests/Fixtures/small-sweep.yaml: 24 synthetic 32x32 images, a depth-2 U-Net; SVD r=2, r=4, ARSVD tau=0.9.
    static let sweepYAML = try! String(contentsOfFile: root + "/Tests/Fixtures/small-sweep.yaml", encoding: .utf8)

    /// Every temporary folder made, removed by `removeTemporaries` when the test class ends.
    nonisolated(unsafe) static var temporaries: [String] = []

    static func tempDir(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "reportstest-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        temporaries.append(d)
        return d
    }

    static func removeTemporaries() {
        for d in temporaries { try? FileManager.default.removeItem(atPath: d) }
        temporaries = []
        finishedCache = nil
    }

    /// Runs the binary; returns exit status and combined output.
    static func run(_ args: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["RANKSWEEP_NO_REEXEC"] = "1"
        p.environment = env
        let log = tempDir("log") + "/out.txt"
        FileManager.default.createFile(atPath: log, contents: nil)
        let fh = FileHandle(forWritingAtPath: log)
        p.standardOutput = fh
        p.standardError = fh
        try p.run()
        let end = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < end { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// State dir of a finished `ranksweep run` (with its automatic report), made on first use.
    nonisolated(unsafe) static var finishedCache: (dir: String, output: String)?
    static func finishedSweep() throws -> (dir: String, output: String) {
        if let f = finishedCache { return f }
        let dir = tempDir("finished")
        try Data(sweepYAML.utf8).write(to: URL(fileURLWithPath: dir + "/sweep.yaml"))
        let r = try run(["run", dir + "/sweep.yaml", "--state-dir", dir + "/state", "--local-workers", "2"], timeout: 120)
        guard r.status == 0 else { throw ReportError("sweep failed (\(r.status)): \(r.output)") }
        finishedCache = (dir + "/state", r.output)
        return finishedCache!
    }

    /// A partial sweep built from the finished one's jobs through the store's own API: the baseline
    /// and SVD r=2 done, SVD r=4 failed after two attempts, ARSVD tau=0.9 queued, plus one more job
    /// (a copy of SVD r=4's spec at r=8) running.
    static func partialSweep() throws -> String {
        let finished = try finishedSweep().dir
        let source = try SweepStore(stateDir: finished, readOnly: true)
        let stored = try source.loadJobs()
        let results = try source.rows("SELECT job, attempt, worker, result, artifacts, seconds FROM results")
        let dir = tempDir("partial") + "/state"
        let store = try SweepStore(stateDir: dir)
        var jobs = stored.map(\.job)
        var extra = stored.first { $0.job.id == "svd-r4-s1" }!.job
        extra.id = "svd-r8-s1"
        extra.spec = extra.spec.replacingOccurrences(of: "\"rank\":4", with: "\"rank\":8").replacingOccurrences(of: "svd-r4-s1", with: "svd-r8-s1")
        jobs.append(extra)
        try store.createSweep(jobs: jobs, maxAttempts: 2, planHash: "test", sweepJSON: "{}")
        var ops: [SweepStore.Op] = [.worker(id: "w1", host: "hostA", cores: 2, slots: 1, threads: 1, state: "ready")]
        for r in results where ["train-s1", "svd-r2-s1"].contains(r["job"]!) {
            let ref = JobRef(job: r["job"]!, attempt: 1)
            ops += [.dispatch(ref, worker: "w1"),
                    .done(ref, worker: "w1", result: r["result"]!, artifacts: r["artifacts"]!, seconds: Double(r["seconds"]!)!)]
        }
        for attempt in 1 ... 2 {
            let ref = JobRef(job: "svd-r4-s1", attempt: attempt)
            ops += [.dispatch(ref, worker: "w1"), .attemptEnded(ref, outcome: .failed, reason: "NaN loss at epoch 1 (attempt \(attempt))")]
        }
        ops.append(.failJob(job: "svd-r4-s1", failures: 2, reason: "failed 2 times: NaN loss at epoch 1"))
        ops.append(.dispatch(JobRef(job: "svd-r8-s1", attempt: 1), worker: "w1"))
        try store.apply(ops)
        try FileManager.default.createSymbolicLink(atPath: dir + "/artifacts", withDestinationPath: finished + "/artifacts")
        return dir
    }

    /// Result JSON objects of the finished jobs, straight from the database (not through Reports' decoders).
    static func storedResults(_ stateDir: String) throws -> [String: [String: Any]] {
        let store = try SweepStore(stateDir: stateDir, readOnly: true)
        var out: [String: [String: Any]] = [:]
        for r in try store.rows("SELECT job, result FROM results") {
            out[r["job"]!] = try JSONSerialization.jsonObject(with: Data(r["result"]!.utf8)) as? [String: Any]
        }
        return out
    }
}

/// Parses CSV (RFC 4180 quoting) into dictionaries keyed by the header.
func parseCSV(_ text: String) -> [[String: String]] {
    var records: [[String]] = [], field = "", record: [String] = [], quoted = false
    let chars = Array(text)
    var i = 0
    while i < chars.count {
        let c = chars[i]
        if quoted {
            if c == "\"" { if i + 1 < chars.count && chars[i + 1] == "\"" { field.append("\""); i += 1 } else { quoted = false } }
            else { field.append(c) }
        } else if c == "\"" { quoted = true }
        else if c == "," { record.append(field); field = "" }
        else if c == "\n" { record.append(field); records.append(record); record = []; field = "" }
        else { field.append(c) }
        i += 1
    }
    guard let header = records.first else { return [] }
    return records.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
}

/// Well-formedness check with Foundation's XML parser; collects element names and ids.
final class XMLCheck: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var ids: [String] = []
    var error: Error?

    static func parse(_ data: Data) -> XMLCheck {
        let check = XMLCheck()
        let parser = XMLParser(data: data)
        parser.delegate = check
        if !parser.parse() { check.error = parser.parserError ?? ReportError("XML parse failed") }
        return check
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append(name)
        if let id = attributes["id"] { ids.append(id) }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }
}
