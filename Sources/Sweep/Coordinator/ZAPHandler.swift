import Basics
import CZeroMQ
import Foundation

/// The ZAP (ZeroMQ authentication protocol, RFC 27) handler: libzmq asks it about every CURVE
/// connection and it admits only allowlisted public keys. Without a handler bound at
/// `inproc://zeromq.zap.01` in the same context, libzmq admits *any* CURVE client that knows the
/// server key; so `start` binds synchronously and throws if it cannot, and the coordinator binds
/// its CURVE socket only afterwards.
public enum ZAPHandler {
    public static let endpoint = "inproc://zeromq.zap.01"

    /// Starts the handler thread; returns once its socket is bound (or throws why not).
    public static func start(context: ZMQContext, allowlist: Set<String>) throws {
        let started = DispatchSemaphore(value: 0)
        let outcome = Box()
        let thread = Thread {
            let socket: ZMQSocket
            do {
                socket = try ZMQSocket(context, .rep)
                try socket.bind(endpoint)
            } catch {
                outcome.set("ZAP handler cannot bind \(endpoint): \(error)")
                started.signal()
                return
            }
            started.signal()
            serve(socket, allowlist: allowlist)
        }
        thread.name = "zap"
        thread.start()
        started.wait()
        if let err = outcome.get() { throw SweepError.io(err) }
    }

    /// Answers requests until the context shuts down.
    static func serve(_ socket: ZMQSocket, allowlist: Set<String>) {
        var refusedCount: [String: Int] = [:]
        while true {
            let frames: [[UInt8]]
            do {
                guard let f = try socket.receive() else { continue }
                frames = f
            } catch let e as ZMQError where e.interrupted { continue } catch { return }  // ETERM: shutting down
            // [version, request id, domain, address, identity, mechanism, credentials...]
            guard frames.count >= 6 else { continue }
            let requestID = frames[1]
            let address = String(decoding: frames[3], as: UTF8.self)
            let mechanism = String(decoding: frames[5], as: UTF8.self)
            var status = "400", text = "refused", user = ""
            if mechanism == "CURVE", frames.count >= 7, let key = CurveKeyPair.z85Encode(frames[6]) {
                if allowlist.contains(key) {
                    status = "200"; text = "OK"; user = key
                } else {
                    let n = (refusedCount[key] ?? 0) + 1
                    refusedCount[key] = n
                    // A refused client keeps reconnecting: log the first refusals and then rarely.
                    if n <= 3 || n % 100 == 0 {
                        Log.warn("refused worker key \(key) from \(address): not in the allowlist (\(n) attempt\(n == 1 ? "" : "s"))")
                    }
                }
            } else {
                Log.warn("refused a \(mechanism) connection from \(address): CURVE required")
            }
            try? socket.send([Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(user.utf8), []])
        }
    }

    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var value: String?
        func set(_ v: String) { lock.lock(); value = v; lock.unlock() }
        func get() -> String? { lock.lock(); defer { lock.unlock() }; return value }
    }
}

/// Reads worker public keys: a directory of `*.pub` files or one file with a key per line.
public enum Allowlist {
    public static func load(_ path: String) throws -> Set<String> {
        var keys = Set<String>()
        if Files.isDirectory(path) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for name in names.sorted() where name.hasSuffix(".pub") {
                keys.insert(try CurveKeyPair.readKey(path + "/" + name, what: "worker public key"))
            }
        } else {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw SweepError.invalid("allowlist \(path) cannot be read") }
            for (i, raw) in text.split(whereSeparator: \.isNewline).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                try CurveKeyPair.validate(line, what: "allowlist \(path) line \(i + 1)")
                keys.insert(line)
            }
        }
        if keys.isEmpty { throw SweepError.invalid("allowlist \(path) holds no worker public keys (*.pub)") }
        return keys
    }
}
