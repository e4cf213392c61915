import Basics
import Foundation
import Sweep

/// Who may read the dashboard. On loopback (the default) anyone on this machine; on any other
/// address (or with `--http-token`) only a holder of the token: generated once, kept with mode
/// 0600 in the state dir, sent as `Authorization: Bearer TOKEN`, or once as `?token=TOKEN`, which
/// sets an HttpOnly cookie so the page's own requests carry it.
public struct DashboardAccess: Sendable {
    /// nil: no token needed.
    public let token: String?
    public static let cookieName = "ranksweep_dashboard"
    public static let fileName = "dashboard.token"

    public init(token: String?) { self.token = token }

    /// The token of `stateDir` (created on first use); `created` is true when it was just made,
    /// so the caller prints it that once.
    public static func load(stateDir: String) throws -> (access: DashboardAccess, created: Bool) {
        let path = stateDir + "/" + fileName
        if Files.exists(path) {
            let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard text.count == 64, SHA256Hasher.isValidHex(text) else {
                throw SweepError.invalid("\(path): not a dashboard token (64 hex digits); delete it to make a new one")
            }
            return (DashboardAccess(token: text), false)
        }
        var g = SystemRandomNumberGenerator()
        let token = (0 ..< 32).map { _ in String(format: "%02x", UInt8.random(in: 0 ... 255, using: &g)) }.joined()
        try AtomicFile.write(Data((token + "\n").utf8), to: path, permissions: 0o600)
        return (DashboardAccess(token: token), true)
    }

    enum Verdict: Equatable {
        case allowed
        /// A correct `?token=`: answer with a cookie (and a redirect to the URL without it).
        case setCookie
        case refused(String)
    }

    func check(authorization: String?, cookie: String?, queryToken: String?) -> Verdict {
        guard let token else { return .allowed }
        if let a = authorization {
            guard a.hasPrefix("Bearer "), Self.same(String(a.dropFirst(7)), token) else { return .refused("wrong bearer token") }
            return .allowed
        }
        if let q = queryToken {
            return Self.same(q, token) ? .setCookie : .refused("wrong token")
        }
        if let c = cookie.flatMap(Self.cookieValue), Self.same(c, token) { return .allowed }
        return .refused(cookie == nil ? "a token is needed (bearer header or ?token=)" : "wrong or expired token cookie")
    }

    /// The dashboard's cookie from a Cookie header ("a=1; ranksweep_dashboard=...").
    static func cookieValue(_ header: String) -> String? {
        for part in header.split(separator: ";").prefix(64) {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0] == cookieName { return String(kv[1]) }
        }
        return nil
    }

    /// Compares in time independent of where the texts differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var d: UInt8 = 0
        for i in 0 ..< x.count { d |= x[i] ^ y[i] }
        return d == 0
    }

    var setCookieHeader: String { "\(Self.cookieName)=\(token ?? ""); HttpOnly; SameSite=Strict; Path=/" }
}

/// `HOST:PORT` for `--http` (port 0: any free one). Loopback unless the host says otherwise.
public struct HTTPAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(parsing text: String, flag: String = "--http") throws {
        var hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw SweepError.invalid("\(flag) \(text): give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
            }
            hostPart = text[text.index(after: text.startIndex) ..< close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw SweepError.invalid("\(flag) \(text): give HOST:PORT, e.g. 127.0.0.1:8080") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = Int(portPart), (0 ... 65535).contains(port) else { throw SweepError.invalid("\(flag) \(text): port must be 0...65535") }
        guard !hostPart.isEmpty, hostPart.count <= 253 else { throw SweepError.invalid("\(flag) \(text): no host") }
        host = String(hostPart)
        self.port = port
    }

    public var isLoopback: Bool { host == "localhost" || host.hasPrefix("127.") || host == "::1" }
}
