import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one way ranksweep writes a file or a folder: into a hidden temporary name beside the
/// destination, then `rename(2)` over it. A reader never sees half a file, and a crash leaves the
/// old one (or nothing) in place.
public enum AtomicFile {
    /// Writes `data` to `path` atomically, creating missing parent folders.
    public static func write(_ data: Data, to path: String, permissions: Int? = nil) throws {
        let tmp = temporaryPath(beside: path)
        try makeDirectory((path as NSString).deletingLastPathComponent)
        guard FileManager.default.createFile(atPath: tmp, contents: data,
                                             attributes: permissions.map { [.posixPermissions: $0] }) else {
            throw FileError("\(path): cannot write (\(String(cString: strerror(errno))))")
        }
        try commit(tmp, to: path)
    }

    /// Writes text (UTF-8) to `path` atomically.
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// Builds a folder at a temporary path beside `path` with `fill`, then renames it to `path`.
    /// An existing non-empty folder at `path` is not replaced: `rename(2)` refuses, and the
    /// temporary folder is removed (a racing writer finished first).
    /// Returns false when `path` was already there and non-empty.
    @discardableResult
    public static func writeDirectory(at path: String, _ fill: (String) throws -> Void) throws -> Bool {
        let tmp = temporaryPath(beside: path)
        try makeDirectory(tmp)
        do { try fill(tmp) } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(atPath: tmp)
            if code == ENOTEMPTY || code == EEXIST { return false }
            throw FileError("\(path): cannot create (\(String(cString: strerror(code))))")
        }
        return true
    }

    /// Builds a folder aside with `fill` and puts it at `path`, replacing what was there: the old
    /// folder is renamed aside, the new one renamed in, the old one removed. A reader sees the old
    /// folder or the new one, never a mix; a failure leaves the old one in place.
    public static func replaceDirectory(at path: String, _ fill: (String) throws -> Void) throws {
        let tmp = temporaryPath(beside: path)
        try makeDirectory(tmp)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try fill(tmp)
        var old: String? = nil
        if FileManager.default.fileExists(atPath: path) {
            let aside = temporaryPath(beside: path)
            guard rename(path, aside) == 0 else { throw FileError("\(path): cannot move the old folder aside (\(String(cString: strerror(errno))))") }
            old = aside
        }
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old, path) }
            throw FileError("\(path): cannot move the new folder into place (\(reason))")
        }
        if let old { try? FileManager.default.removeItem(atPath: old) }
    }

    /// A hidden, unique name in the same folder as `path` (same file system, so rename is atomic).
    public static func temporaryPath(beside path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        return dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }

    /// Renames a finished temporary file over `path`; removes it if that fails.
    public static func commit(_ tmp: String, to path: String) throws {
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw FileError("\(path): cannot write (\(reason))")
        }
    }

    public static func makeDirectory(_ path: String) throws {
        guard !path.isEmpty else { return }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw FileError("\(path): cannot create folder (\((error as NSError).localizedDescription))")
        }
    }
}

/// A file-system failure, one line naming the path.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Paths a user gives become absolute once, where they enter the program, so that no relative
/// path reaches another process or a file that outlives the working directory it was typed in.
public enum UserPath {
    /// `path` made absolute against `base` (default: the working directory), `~` expanded, and
    /// `.`/`..` components removed; symbolic links are kept as given.
    public static func absolute(_ path: String, relativeTo base: String? = nil) -> String {
        var p = (path as NSString).expandingTildeInPath
        if !p.hasPrefix("/") {
            let b = base ?? FileManager.default.currentDirectoryPath
            p = b + "/" + p
        }
        return normalise(p)
    }

    /// Removes `.`, `..` and repeated slashes lexically (`/a/./b/../c//` -> `/a/c`).
    static func normalise(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }
}
