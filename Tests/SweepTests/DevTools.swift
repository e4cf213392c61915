import Foundation
import XCTest

/// Headless Chromium driven over the DevTools protocol: Debian's `chromium` started with
/// `--remote-debugging-port=0`, a WebSocket to its page target, `Page.navigate`,
/// `Runtime.evaluate` and `Page.captureScreenshot`. The network is blocked for everything but
/// loopback (a dead proxy, and every host name unresolvable).
final class HeadlessChromium {
    static let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    let child: TestChild
    private let socket: WebSocket
    private var nextID = 0

    init(dir: String) throws {
        let chromium = try XCTUnwrap(Self.path, "chromium is not installed: run scripts/install-deps.sh --test")
        let log = dir + "/chromium.log"
        child = try TestChild(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                                         "--hide-scrollbars", "--user-data-dir=\(dir)/chromium-profile", "--remote-debugging-port=0",
                                         "--window-size=1400,1150", "--proxy-server=127.0.0.1:9",
                                         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"],
                              environment: ProcessInfo.processInfo.environment, log: log)
        var port: Int?
        let regex = try NSRegularExpression(pattern: "DevTools listening on ws://127\\.0\\.0\\.1:(\\d+)/")
        let deadline = Date().addingTimeInterval(60)
        while port == nil && Date() < deadline && child.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let m = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) { port = Int(text[Range(m.range(at: 1), in: text)!]) }
            usleep(100_000)
        }
        let p = try XCTUnwrap(port, "chromium did not open its DevTools port: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        // The page target's WebSocket path, from the DevTools HTTP endpoint.
        var path: String?
        while path == nil && Date() < deadline {
            let list = (try? TCPClient.request(port: p, "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:\(p)\r\nConnection: close\r\n\r\n")) ?? ""
            if let body = list.components(separatedBy: "\r\n\r\n").dropFirst().first,
               let targets = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]],
               let page = targets.first(where: { $0["type"] as? String == "page" && $0["url"] as? String == "about:blank" }),
               let ws = page["webSocketDebuggerUrl"] as? String {
                path = String(ws.drop(while: { $0 != "/" }).dropFirst(2).drop(while: { $0 != "/" }))
            }
            if path == nil { usleep(100_000) }
        }
        socket = try WebSocket(port: p, path: try XCTUnwrap(path, "no page target"))
    }

    deinit { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }

    /// Sends one command and returns its `result`.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:]) throws -> [String: Any] {
        nextID += 1
        let id = nextID
        try socket.send(try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params]))
        while true {
            let message = try socket.receive()
            guard let object = try JSONSerialization.jsonObject(with: message) as? [String: Any], object["id"] as? Int == id else { continue }
            if let error = object["error"] { throw NSError(domain: "DevTools \(method): \(error)", code: 1) }
            return object["result"] as? [String: Any] ?? [:]
        }
    }

    func navigate(_ url: String) throws { try call("Page.navigate", ["url": url]) }

    /// The value of a JavaScript expression (JSON-compatible).
    func evaluate(_ expression: String) throws -> Any? {
        let r = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        return (r["result"] as? [String: Any])?["value"]
    }

    func screenshot(to path: String) throws {
        let r = try call("Page.captureScreenshot", ["format": "png"])
        let data = try XCTUnwrap(Data(base64Encoded: r["data"] as? String ?? ""))
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// A blocking TCP connection to a loopback port.
final class TCPClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw NSError(domain: "connect 127.0.0.1:\(port)", code: Int(errno)) }
    }

    deinit { close(fd) }

    func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw NSError(domain: "send", code: Int(errno)) }
            sent += n
        }
    }

    /// Reads more into the buffer; false at end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 { throw NSError(domain: "recv", code: Int(errno)) }
        if n == 0 { return false }
        buffer += chunk[0 ..< n]
        return true
    }

    func read(exactly count: Int) throws -> [UInt8] {
        while buffer.count < count { guard try fill() else { throw NSError(domain: "connection closed", code: 0) } }
        let out = Array(buffer[0 ..< count])
        buffer.removeFirst(count)
        return out
    }

    func read(until marker: String) throws -> String {
        let m = Array(marker.utf8)
        while true {
            if let r = buffer.firstRange(of: m) {
                let out = Array(buffer[..<r.upperBound])
                buffer.removeFirst(r.upperBound)
                return String(decoding: out, as: UTF8.self)
            }
            guard try fill() else { throw NSError(domain: "connection closed", code: 0) }
        }
    }

    func readAll() throws -> String {
        while try fill() {}
        return String(decoding: buffer, as: UTF8.self)
    }

    /// One request; the answer's head and its Content-Length body (DevTools keeps the connection open).
    static func request(port: Int, _ text: String) throws -> String {
        let c = try TCPClient(port: port)
        try c.write(Array(text.utf8))
        let head = try c.read(until: "\r\n\r\n")
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        guard let length else { return head + (try c.readAll()) }
        return head + String(decoding: try c.read(exactly: length), as: UTF8.self)
    }
}

/// The client side of RFC 6455, as much as DevTools needs: text frames, masked out, reassembled in.
final class WebSocket {
    let tcp: TCPClient

    init(port: Int, path: String) throws {
        tcp = try TCPClient(port: port)
        let key = Data((0 ..< 16).map { _ in UInt8.random(in: 0 ... 255) }).base64EncodedString()
        try tcp.write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
        let head = try tcp.read(until: "\r\n\r\n")
        guard head.hasPrefix("HTTP/1.1 101") else { throw NSError(domain: "WebSocket handshake: \(head)", code: 0) }
    }

    func send(_ payload: Data) throws {
        var frame: [UInt8] = [0x81]
        let n = payload.count
        if n < 126 { frame.append(0x80 | UInt8(n)) } else if n < 65536 {
            frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xff)]
        } else {
            frame.append(0x80 | 127)
            for i in (0 ..< 8).reversed() { frame.append(UInt8((n >> (8 * i)) & 0xff)) }
        }
        let mask = (0 ..< 4).map { _ in UInt8.random(in: 0 ... 255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try tcp.write(frame)
    }

    func receive() throws -> Data {
        var message: [UInt8] = []
        while true {
            let h = try tcp.read(exactly: 2)
            let opcode = h[0] & 0x0f, fin = h[0] & 0x80 != 0
            var length = Int(h[1] & 0x7f)
            if length == 126 { length = try tcp.read(exactly: 2).reduce(0) { $0 << 8 | Int($1) } }
            else if length == 127 { length = try tcp.read(exactly: 8).reduce(0) { $0 << 8 | Int($1) } }
            let mask = h[1] & 0x80 != 0 ? try tcp.read(exactly: 4) : nil
            var payload = try tcp.read(exactly: length)
            if let mask { payload = payload.enumerated().map { $0.element ^ mask[$0.offset % 4] } }
            if opcode == 0x8 { throw NSError(domain: "WebSocket closed", code: 0) }
            if opcode == 0x9 || opcode == 0xA { continue }
            message += payload
            if fin { return Data(message) }
        }
    }
}
