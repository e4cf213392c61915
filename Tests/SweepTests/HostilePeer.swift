import Basics
import Foundation
import XCTest
@testable import Sweep

/// A peer that speaks the documented protocol from the test process, as a second process on
/// loopback would: it registers with whatever worker id and secret it likes (or never), and sends
/// raw headers, so it can say what no honest worker says (Int64.max attempts, other workers' jobs).
final class HostilePeer {
    let ctx: ZMQContext
    let socket: ZMQSocket
    var lastSent = 0.0
    /// Every message received so far, in order (command, header fields), when `keepLog`.
    var received: [(String, [String: Any])] = []
    var keepLog = true
    /// Messages received per command.
    var counts: [String: Int] = [:]

    init(endpoint: String, routingID: String? = nil, curve: (CurveKeyPair, String)? = nil) throws {
        ctx = try ZMQContext()
        socket = try ZMQSocket(ctx, .dealer)
        if let routingID { try socket.setIdentity(routingID) }
        if let (keys, server) = curve { try socket.makeCurveClient(keys, serverPublicKey: server) }
        try socket.connect(endpoint)
    }

    /// Sends `[command][header][payload...]` exactly as given.
    /// Replies are read after every send: a peer that does not read makes the coordinator drop
    /// what it sends it (its queue to the peer is full), STATUS-REPLY included.
    func send(_ command: String, _ header: String, _ payload: [[UInt8]] = [], dontWait: Bool = false) throws {
        try sendFrames([Array(command.utf8), Array(header.utf8)] + payload)
    }

    func sendFrames(_ frames: [[UInt8]]) throws {
        try socket.send(frames)
        lastSent = monotonicSeconds()
        drain()
    }

    static func ref(_ job: String, _ attempt: String) -> String { "{\"job\":\"\(job)\",\"attempt\":\(attempt)}" }

    func hello(id: String, secret: String, running: [(String, String)] = []) throws {
        let r = running.map { HostilePeer.ref($0.0, $0.1) }.joined(separator: ",")
        try send("HELLO", "{\"v\":\(Wire.version),\"worker\":\"\(id)\",\"secret\":\"\(secret)\",\"host\":\"hostile\",\"pid\":1,"
                 + "\"cores\":1,\"slots\":1,\"threads\":1,\"running\":[\(r)]}")
    }

    func done(_ job: String, _ attempt: String, result: String = "{\"forged\":true}") throws {
        try send("DONE", "{\"v\":\(Wire.version),\"job\":\"\(job)\",\"attempt\":\(attempt),\"seconds\":0.1,\"artifacts\":{}}", [Array(result.utf8)])
    }

    func failed(_ job: String, _ attempt: String, handback: Bool) throws {
        try send("FAILED", "{\"v\":\(Wire.version),\"job\":\"\(job)\",\"attempt\":\(attempt),\"reason\":\"forged\",\"handback\":\(handback)}")
    }

    func progress(_ job: String, _ attempt: String) throws {
        try send("PROGRESS", "{\"v\":\(Wire.version),\"job\":\"\(job)\",\"attempt\":\(attempt),\"epoch\":1,\"epochs\":2}")
    }

    func put(hash: String, offset: Int64, size: Int64, bytes: [UInt8]) throws {
        try send("PUT", "{\"v\":\(Wire.version),\"hash\":\"\(hash)\",\"offset\":\(offset),\"size\":\(size)}", [bytes])
    }

    /// Receives what is queued (without waiting).
    func drain() {
        while let frames = try? socket.receive(dontWait: true) { record(frames) }
    }

    private func record(_ frames: [[UInt8]]) {
        guard let m = try? WireMessage.parse(frames[...]) else { return }
        counts[m.command.rawValue, default: 0] += 1
        guard keepLog else { return }
        received.append((m.command.rawValue, (try? JSONSerialization.jsonObject(with: Data(m.header)) as? [String: Any]) ?? [:]))
    }

    /// Messages `waitFor` has looked past (replies read while sending are not skipped).
    var consumed = 0

    /// Waits for a message with this command not returned before (heartbeating meanwhile);
    /// returns its header fields. It may have arrived already, while the test was sending.
    func waitFor(_ command: String, _ seconds: Double, heartbeat: Bool = true) throws -> [String: Any] {
        let end = monotonicSeconds() + seconds
        var seen = consumed
        while monotonicSeconds() < end {
            if heartbeat && monotonicSeconds() - lastSent >= 0.1 { try send("HEARTBEAT", "{\"v\":\(Wire.version)}") }
            if try ZMQPoll.readable([socket], timeoutMs: 50)[0] {
                while let frames = try socket.receive(dontWait: true) { record(frames) }
            }
            while seen < received.count {
                if received[seen].0 == command { consumed = seen + 1; return received[seen].1 }
                seen += 1
            }
        }
        throw SweepError.io("no \(command) within \(seconds) s (got \(received.map(\.0)))")
    }

    /// A STATUS round trip on this connection: when its reply arrives, the coordinator has handled
    /// everything this peer sent before it (one pipe keeps order).
    func roundTrip(_ seconds: Double = 20) throws {
        let before = counts["STATUS-REPLY"] ?? 0
        try send("STATUS", "{\"v\":\(Wire.version)}")
        let end = monotonicSeconds() + seconds
        while monotonicSeconds() < end {
            if try ZMQPoll.readable([socket], timeoutMs: 50)[0] {
                while let frames = try socket.receive(dontWait: true) { record(frames) }
            }
            if counts["STATUS-REPLY"] ?? 0 > before { return }
        }
        throw SweepError.io("no STATUS-REPLY within \(seconds) s")
    }
}

/// Facts about a live process from /proc (Linux).
enum ProcFacts {
    // Each lookup that fails (the process gone, /proc unreadable) fails the test and reads as the
    // largest value, so that no upper bound passes because the lookup failed.

    /// The process's open descriptors.
    static func openFDs(_ pid: Int32, file: StaticString = #filePath, line: UInt = #line) -> Int {
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else {
            XCTFail("cannot list /proc/\(pid)/fd: is the process gone?", file: file, line: line)
            return Int.max
        }
        return fds.count
    }

    /// Resident set size in KiB (VmRSS).
    static func rssKiB(_ pid: Int32, file: StaticString = #filePath, line: UInt = #line) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for entry in status.split(separator: "\n") where entry.hasPrefix("VmRSS:") {
            if let kib = entry.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) }) { return kib }
        }
        XCTFail("no VmRSS in /proc/\(pid)/status: is the process gone?", file: file, line: line)
        return Int.max
    }

    static func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    /// A file's size; a missing file fails the test (and reads as the largest value).
    static func size(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        guard let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value else {
            XCTFail("no file \(path)", file: file, line: line)
            return Int64.max / 4
        }
        return size
    }

    /// A file's size, 0 when it does not exist (SQLite's WAL file between checkpoints).
    static func sizeIfPresent(_ path: String) -> Int64 {
        FileManager.default.fileExists(atPath: path) ? size(path) : 0
    }
}

extension Cluster {
    /// The open attempts (job, attempt, worker) the store records.
    func openAttempts() -> [(String, Int, String)] {
        ((try? store().rows("SELECT job, attempt, worker FROM attempts WHERE outcome IS NULL")) ?? []).compactMap {
            guard let j = $0["job"], let a = $0["attempt"].flatMap({ Int($0) }), let w = $0["worker"] else { return nil }
            return (j, a, w)
        }
    }

    /// `ranksweep status --connect`: exit status and output.
    func statusConnect(extra: [String] = []) throws -> (Int32?, String) {
        let p = try Proc(["status", "--connect", endpoint, "--timeout", "10"] + extra, log: dir + "/status-\(UInt32.random(in: 0 ... .max)).log")
        let rc = p.wait(20)
        return (rc, p.output)
    }
}
