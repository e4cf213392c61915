import CZeroMQ

/// One libzmq context per process. Contexts are thread-safe (sockets are not), so this class is
/// Sendable: threads share the context and each creates and owns its own sockets.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws {
        guard let h = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        handle = h
    }

    /// Makes every blocking call on this context's sockets return ETERM, so owner threads can
    /// notice and close their sockets. Safe from any thread.
    public func shutdown() { zmq_ctx_shutdown(handle) }

    deinit {
        // Every socket sets linger 0, so termination cannot hang on unsent messages.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
