/// The one CSV writer: RFC 4180 (comma separated, CRLF-free `\n` line ends as spreadsheets accept;
/// a field holding a comma, quote, CR or LF is quoted, with quotes doubled).
public struct CSVTable: Sendable, Equatable {
    public let header: [String]
    public private(set) var rows: [[String]] = []

    public init(header: [String]) { self.header = header }

    /// Appends a row; it must have one field per column.
    public mutating func append(_ row: [String]) {
        precondition(row.count == header.count, "CSV row has \(row.count) fields for \(header.count) columns")
        rows.append(row)
    }

    public var text: String {
        ([header] + rows).map { $0.map(CSVTable.field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// One field, quoted when it must be.
    public static func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// Writes the table atomically.
    public func write(to path: String) throws { try AtomicFile.write(text, to: path) }
}
