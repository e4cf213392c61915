import Foundation

/// An image file (PNG, JPEG or TIFF) that could not be read or written. The description is one line
/// that names the file first, so a user can go straight to it:
/// `data/images/0007.png: file is truncated (unexpected end of data)`.
public struct ImageFileError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// The file at fault, as given by the caller.
    public let path: String
    /// What is wrong with it, in words.
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
    public var errorDescription: String? { description }
}
