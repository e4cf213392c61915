import CZeroMQ

/// `zmq_poll` over sockets owned by the calling thread.
public enum ZMQPoll {
    /// Waits up to `timeoutMs` for input on any socket; returns which ones are readable.
    /// A signal interrupts the wait (EINTR): we return "nothing ready" so the caller's loop can
    /// look at its stop flag and carry on.
    public static func readable(_ sockets: [ZMQSocket], timeoutMs: Int) throws -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let rc = zmq_poll(&items, Int32(items.count), timeoutMs)
        if rc < 0 {
            let err = ZMQError.last("zmq_poll")
            if err.interrupted { return Array(repeating: false, count: sockets.count) }
            throw err
        }
        return items.map { ($0.revents & Int16(ZMQ_POLLIN)) != 0 }
    }
}
