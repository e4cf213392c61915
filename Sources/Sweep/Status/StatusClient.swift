import Basics
import CZeroMQ
import Foundation

/// `ranksweep status --connect`: asks a running coordinator for a `SweepStatus` over ZeroMQ.
///
/// One DEALER, one STATUS, one STATUS-REPLY. It never says HELLO, so the coordinator never
/// registers it as a worker, never gives it a job, and drops anything else it might send (an
/// unknown peer's DONE is answered by BYE, not recorded). With CURVE it is an ordinary CURVE
/// client: the coordinator's ZAP handler admits it only if its public key is in the allowlist.
/// A socket monitor turns a ZAP refusal into a clear error instead of a silent timeout.
public enum StatusClient {
    public static func fetch(endpoint: String, keys: CurveKeyPair? = nil, serverKey: String? = nil,
                             timeoutMs: Int = Wire.defaultStatusTimeoutMs) throws -> SweepStatus {
        if (keys == nil) != (serverKey == nil) {
            throw SweepError.invalid("CURVE needs both --key (own secret key) and --server-key (coordinator public key)")
        }
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .dealer)
        let monitorEndpoint = "inproc://status-monitor-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        guard zmq_socket_monitor(socket.handle, monitorEndpoint, events) == 0 else { throw ZMQError.last("zmq_socket_monitor") }
        let monitor = try ZMQSocket(context, .pair)
        try monitor.connect(monitorEndpoint)
        if let keys, let serverKey { try socket.makeCurveClient(keys, serverPublicKey: serverKey) }
        do { try socket.connect(endpoint) } catch { throw SweepError.invalid("cannot connect to \(endpoint): \(error)") }
        // Queued on the pipe connect created; sent once the handshake is done.
        try socket.send(WireMessage(.status, StatusHeader()).frames, dontWait: true)

        let end = monotonicSeconds() + Double(timeoutMs) / 1000
        while true {
            let left = Int((end - monotonicSeconds()) * 1000)
            if left <= 0 { break }
            let ready = try ZMQPoll.readable([socket, monitor], timeoutMs: left)
            if ready[1], let ev = try monitor.receive(dontWait: true), let first = ev.first, first.count >= 6 {
                let id = Int32(first[0]) | Int32(first[1]) << 8
                let value = UInt32(first[2]) | UInt32(first[3]) << 8 | UInt32(first[4]) << 16 | UInt32(first[5]) << 24
                if id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH {
                    throw SweepError.invalid("\(endpoint) refused us (ZAP status \(value)): our public key is not in the coordinator's allowlist")
                }
                if Int32(bitPattern: value) == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH {
                    throw SweepError.invalid("\(endpoint) " + (keys == nil ? "requires CURVE: give --key and --server-key"
                                                                         : "does not use CURVE: drop --key and --server-key"))
                }
                throw SweepError.invalid("handshake with \(endpoint) failed (protocol error 0x\(String(value, radix: 16))): check --server-key")
            }
            if ready[0], let frames = try socket.receive(dontWait: true) {
                let msg: WireMessage
                do { msg = try WireMessage.parse(frames[...]) } catch {
                    throw SweepError.protocolViolation("\(endpoint) sent a malformed reply: \(error)")
                }
                switch msg.command {
                case .statusReply:
                    let h = try msg.decode(StatusReplyHeader.self)
                    guard h.schema == Wire.statusSchema else {
                        throw SweepError.protocolViolation("\(endpoint) sent status schema \(h.schema), we read \(Wire.statusSchema)")
                    }
                    guard let payload = msg.payload.first else { throw SweepError.protocolViolation("STATUS-REPLY without a payload") }
                    do { return try JSONDecoder().decode(SweepStatus.self, from: Data(payload)) } catch {
                        throw SweepError.protocolViolation("STATUS-REPLY payload is not valid: \(WireCodec.shortReason(error))")
                    }
                case .bye:
                    let reason = (try? msg.decode(ByeHeader.self))?.reason ?? "?"
                    throw SweepError.invalid("\(endpoint) said BYE (\(reason)): a coordinator too old for STATUS?")
                default:
                    continue  // a heartbeat or the like: not for us
                }
            }
        }
        throw SweepError.io("no answer from \(endpoint) within \(Coordinator.seconds(Double(timeoutMs) / 1000)) s: is a coordinator running there"
                            + (keys == nil ? "?" : ", and is our key in its allowlist?"))
    }
}
