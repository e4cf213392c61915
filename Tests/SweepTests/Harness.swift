import Foundation
import XCTest
@testable import Sweep

/// Real processes on loopback: the built `ranksweep` binary, short heartbeats, temp dirs.
enum Harness {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let binary = root + "/.build/release/ranksweep"

    /// 100 ms heartbeats, dead after 5 missed (0.5 s): faults show up fast.
    static let env: [String: String] = {
        var e = ProcessInfo.processInfo.environment
        e["RANKSWEEP_HEARTBEAT_MS"] = "100"
        e["RANKSWEEP_LIVENESS"] = "5"
        e["RANKSWEEP_RECONNECT_MAX_MS"] = "400"
        e["RANKSWEEP_NO_REEXEC"] = "1"
        return e
    }()

    static func tempDir(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "sweeptest-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func freePort() -> Int { Int.random(in: 20000 ... 60000) }

    static func write(_ text: String, _ path: String) {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }
}

/// A spawned ranksweep process with its output in a log file.
final class Proc {
    let process = Process()
    let log: String

    init(_ args: [String], log: String) throws {
        self.log = log
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.binary)
        process.arguments = args
        process.environment = Harness.env
        let fh = FileHandle(forWritingAtPath: log)
        process.standardOutput = fh
        process.standardError = fh
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    func kill9() { kill(pid, SIGKILL); process.waitUntilExit() }
    func term() { kill(pid, SIGTERM) }

    /// Waits for exit; returns the status, or nil on timeout (the process is then killed).
    @discardableResult
    func wait(_ seconds: Double) -> Int32? {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { usleep(20_000) }
        if process.isRunning { kill9(); return nil }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(pid, SIGKILL) } }
}

/// Polls until `cond` holds or the time is up.
func eventually(_ seconds: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line, _ cond: () -> Bool) {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if cond() { return }
        usleep(30_000)
    }
    XCTFail("timed out waiting for: \(what)", file: file, line: line)
}

/// A coordinator + workers setup in one temp dir.
final class Cluster {
    let dir: String
    let port = Harness.freePort()
    var coordinator: Proc?
    var workers: [Proc] = []
    var endpoint: String { "tcp://127.0.0.1:\(port)" }
    var stateDir: String { dir + "/state" }

    init(_ name: String, sweep: String) {
        dir = Harness.tempDir(name)
        Harness.write(sweep, dir + "/sweep.yaml")
    }

    @discardableResult
    func startCoordinator(extra: [String] = [], tag: String = "") throws -> Proc {
        let p = try Proc(["coordinator", "--sweep", dir + "/sweep.yaml", "--bind", endpoint, "--state-dir", stateDir, "--progress", "plain"] + extra,
                         log: dir + "/coordinator\(tag).log")
        coordinator = p
        eventually(10, "coordinator listening") { p.output.contains("listening on") || !p.process.isRunning }
        return p
    }

    @discardableResult
    func startWorker(_ name: String, extra: [String] = []) throws -> Proc {
        let p = try Proc(["worker", "--connect", endpoint, "--name", name, "--cache-dir", dir + "/cache-\(name)", "--threads", "1"] + extra,
                         log: dir + "/worker-\(name).log")
        workers.append(p)
        return p
    }

    func store() throws -> SweepStore { try SweepStore(stateDir: stateDir, readOnly: true) }

    func count(_ sql: String) -> Int { (try? store().count(sql)) ?? -1 }

    deinit {
        for w in workers where w.process.isRunning { w.kill9() }
        if let c = coordinator, c.process.isRunning { c.kill9() }
    }
}
