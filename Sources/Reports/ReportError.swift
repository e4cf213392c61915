/// A report that cannot be built: the message names the state dir, file or job at fault, in one line.
public struct ReportError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
