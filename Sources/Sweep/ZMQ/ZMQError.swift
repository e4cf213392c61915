import CZeroMQ

/// A libzmq call failed: which call, and libzmq's errno text.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32
    public var description: String { "\(call): \(String(cString: zmq_strerror(code)))" }

    static func last(_ call: String) -> ZMQError { ZMQError(call: call, code: zmq_errno()) }

    /// True when the call only failed because nothing was ready (non-blocking I/O).
    public var wouldBlock: Bool { code == EAGAIN }
    /// True when a signal interrupted the call; the caller checks its stop flag and retries.
    public var interrupted: Bool { code == EINTR }
    /// True when the context is shutting down.
    public var terminated: Bool { code == ETERM }
    /// True when a ROUTER_MANDATORY send names a peer that is gone.
    public var hostUnreachable: Bool { code == EHOSTUNREACH }
}
