import CZeroMQ
import Foundation

/// A libzmq socket owned by exactly one thread (not Sendable: Swift 6 keeps it there).
/// Linger is 0 from creation (the default -1 makes context termination hang) and a maximum
/// inbound message size is always set so a hostile peer cannot make us allocate without bound.
public final class ZMQSocket {
    public enum Kind: Int32 { case router = 6, dealer = 5, rep = 4, req = 3, pair = 0, push = 8, pull = 7 }

    let handle: UnsafeMutableRawPointer
    /// Keeps the context alive as long as any socket on it is open.
    let context: ZMQContext

    public init(_ context: ZMQContext, _ kind: Kind, maxMessageSize: Int64 = ZMQSocket.defaultMaxMessageSize) throws {
        guard let h = zmq_socket(context.handle, kind.rawValue) else { throw ZMQError.last("zmq_socket") }
        handle = h
        self.context = context
        try set(ZMQ_LINGER, Int32(0))
        try set(ZMQ_MAXMSGSIZE, maxMessageSize)
    }

    /// Largest message a peer may send us; larger ones make libzmq drop the connection.
    /// Artifact chunks are 256 KiB, so 4 MiB leaves room for headers and leaves no room for abuse.
    public static let defaultMaxMessageSize: Int64 = 4 << 20

    deinit { zmq_close(handle) }

    // MARK: options

    public func set(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    public func set(_ option: Int32, _ value: Int64) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    public func set(_ option: Int32, _ bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    public func set(_ option: Int32, _ string: String) throws { try set(option, Array(string.utf8)) }

    public func setIdentity(_ id: String) throws { try set(ZMQ_ROUTING_ID, id) }

    /// A send to a peer that is gone becomes EHOSTUNREACH instead of a silent drop.
    public func setRouterMandatory() throws { try set(ZMQ_ROUTER_MANDATORY, Int32(1)) }

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("connect \(endpoint)") }
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to the chosen port).
    public func lastEndpoint() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        var size = buf.count
        _ = zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buf, &size)
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: multipart I/O

    /// Sends all frames as one multipart message. `zmq_send` copies, so Swift storage is safe.
    /// Throws EAGAIN when `dontWait` and the pipe is full, EHOSTUNREACH for a gone ROUTER peer.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws {
        var one: UInt8 = 0
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if i < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let rc: Int32
            if frame.isEmpty {
                rc = zmq_send(handle, &one, 0, flags)
            } else {
                rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            }
            if rc < 0 { throw ZMQError.last("zmq_send") }
        }
    }

    /// Receives one whole multipart message, copying each frame out before closing it and reading
    /// `more` before the close. Returns nil when `dontWait` and nothing is queued.
    public func receive(dontWait: Bool = false) throws -> [[UInt8]]? {
        var ignored: String?
        return try receive(dontWait: dontWait, userID: &ignored)
    }

    /// The same, also reading the message's "User-Id" property: with CURVE, the public key
    /// (Z85) our ZAP handler admitted the sender with; nil without CURVE. Unlike anything in the
    /// message, the sender cannot choose it.
    public func receive(dontWait: Bool = false, userID: inout String?) throws -> [[UInt8]]? {
        userID = nil
        var frames: [[UInt8]] = []
        var more = true
        while more {
            var msg = zmq_msg_t()
            zmq_msg_init(&msg)
            let rc = zmq_msg_recv(&msg, handle, (dontWait && frames.isEmpty) ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let err = ZMQError.last("zmq_msg_recv")
                zmq_msg_close(&msg)
                if err.wouldBlock && frames.isEmpty { return nil }
                throw err
            }
            // A ROUTER's first frame (the routing id) is made locally and carries no metadata: take
            // the property from the first frame that has it.
            if userID == nil { userID = zmq_msg_gets(&msg, "User-Id").map { String(cString: $0) } }
            let size = zmq_msg_size(&msg)
            if size > 0, let data = zmq_msg_data(&msg) {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            more = zmq_msg_more(&msg) != 0
            zmq_msg_close(&msg)
        }
        return frames
    }
}
