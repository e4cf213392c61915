/// Errors a user can act on: each message names the file, flag, key or peer at fault.
public enum SweepError: Error, CustomStringConvertible, Sendable {
    case invalid(String)
    case io(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .invalid(let m), .io(let m), .protocolViolation(let m): return m
        }
    }
}
