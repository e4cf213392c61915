import Basics
import Foundation
import TestSupport
import XCTest
@testable import Sweep

/// Real processes on loopback: the built `ranksweep` binary, short heartbeats, temp dirs.
enum Harness {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let binary = BuiltBinary.ranksweep

    /// 100 ms heartbeats, dead after 5 missed (0.5 s on an idle machine, stretched by the load
    /// factor: a busy machine must not declare a live worker dead): faults show up fast.
    static let livenessBeats = Int(5 * TestLoad.factor)
    /// Seconds of silence after which the coordinator declares a worker dead (heartbeat x liveness).
    static let deadAfterSeconds = 0.1 * Double(livenessBeats)

    static let env: [String: String] = {
        var e = ProcessInfo.processInfo.environment
        e["RANKSWEEP_HEARTBEAT_MS"] = "100"
        e["RANKSWEEP_LIVENESS"] = String(livenessBeats)
        e["RANKSWEEP_RECONNECT_MAX_MS"] = "400"
        e["RANKSWEEP_NO_REEXEC"] = "1"
        return e
    }()

    static func tempDir(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "sweeptest-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Removes a test's temp dir, unless RANKSWEEP_KEEP_TEST_DIRS is set (to read its logs after a failure).
    static func removeTempDir(_ dir: String) {
        if ProcessInfo.processInfo.environment["RANKSWEEP_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Below Linux's ephemeral range (32768-60999): a port there can be some connection's local end
    /// at any moment, and binding it then fails for a reason that has nothing to do with the test.
    static func freePort() -> Int { Int.random(in: 20000 ... 32700) }

    static func write(_ text: String, _ path: String) {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }
}

/// A child process with stdout and stderr in a log file, started and reaped with the project's own
/// spawn (`SpawnedChild`: waitpid on the pid). Not Foundation's `Process`, which learns of an exit
/// through a descriptor the child inherits: when a script leaves a background process behind (a
/// launched worker), `waitUntilExit` never returns and the suite hangs.
final class TestChild: @unchecked Sendable {
    let child: SpawnedChild
    private var end: (code: Int32, signal: Int32?)?

    init(_ path: String, _ arguments: [String], environment: [String: String], log: String) throws {
        child = try SpawnedChild(path: path, arguments: arguments, environment: environment, stderrPath: log, stdoutToStderrFile: true)
    }

    var processIdentifier: Int32 { child.pid }
    var isRunning: Bool {
        if end == nil { end = child.exitIfEnded() }
        return end == nil
    }
    /// The exit code, or the signal number that ended it (as Foundation reports it); -1 while running.
    var terminationStatus: Int32 { isRunning ? -1 : (end!.signal ?? end!.code) }
    func waitUntilExit() { if end == nil { end = child.wait() } }
    func terminate() { kill(child.pid, SIGTERM) }
    deinit { if isRunning { kill(child.pid, SIGKILL); waitUntilExit() } }
}

/// A spawned ranksweep process with its output in a log file.
final class Proc {
    let process: TestChild
    let log: String

    init(_ args: [String], log: String, env: [String: String] = Harness.env) throws {
        self.log = log
        process = try TestChild(Harness.binary, args, environment: env, log: log)
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
}

/// Polls until `cond` holds or the time is up.
/// Waits until `cond` holds, for `seconds` stretched by the machine's load factor (`TestLoad`).
func eventually(_ seconds: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line, _ cond: () -> Bool) {
    let end = Date().addingTimeInterval(TestLoad.seconds(seconds))
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
    func startCoordinator(extra: [String] = [], tag: String = "", env: [String: String] = Harness.env) throws -> Proc {
        let p = try Proc(["coordinator", "--sweep", dir + "/sweep.yaml", "--bind", endpoint, "--state-dir", stateDir, "--progress", "plain"] + extra,
                         log: dir + "/coordinator\(tag).log", env: env)
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

    /// A count from the state dir. A query that keeps failing (not a transient lock) fails the test
    /// and reads as Int.max, so that no bound passes because the lookup failed.
    func count(_ sql: String, file: StaticString = #filePath, line: UInt = #line) -> Int {
        var lastError: Error?
        for _ in 0..<20 {
            do { return try store().count(sql) } catch { lastError = error; usleep(50_000) }
        }
        XCTFail("cannot count \(sql): \(lastError.map { "\($0)" } ?? "?")", file: file, line: line)
        return Int.max
    }

    deinit {
        for w in workers where w.process.isRunning { w.kill9() }
        if let c = coordinator, c.process.isRunning { c.kill9() }
        Harness.removeTempDir(dir)
    }
}
