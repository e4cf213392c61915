import Basics
import Foundation

/// A folder packed into one file, so a dataset travels as one content-addressed artifact.
///
/// Format (deterministic: same files, same bytes, same hash on every host):
/// ```
/// "RSARCHV1"                                  8-byte magic
/// per regular file, sorted by relative path (bytewise UTF-8):
///   u32 LE  path length, path bytes (UTF-8, '/'-separated, relative, no "." or ".." parts)
///   u64 LE  file size, file bytes
/// u32 LE 0                                    end marker
/// ```
/// Modes, times, owners, empty directories and symlinks are not kept (a dataset does not need them).
public enum DirectoryArchive {
    static let magic = Array("RSARCHV1".utf8)

    /// Writes the archive of `directory` to `archivePath`; returns its SHA-256 and size.
    public static func pack(directory: String, to archivePath: String) throws -> (hash: String, size: Int64) {
        let files = try listFiles(directory).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard FileManager.default.createFile(atPath: archivePath, contents: nil),
              let out = FileHandle(forWritingAtPath: archivePath) else { throw SweepError.io("cannot write \(archivePath)") }
        defer { try? out.close() }
        var hasher = SHA256Hasher()
        var size: Int64 = 0
        func emit(_ bytes: [UInt8]) throws {
            hasher.update(bytes)
            size += Int64(bytes.count)
            try out.write(contentsOf: bytes)
        }
        try emit(magic)
        for rel in files {
            let pathBytes = Array(rel.utf8)
            let full = directory + "/" + rel
            let attrs = try FileManager.default.attributesOfItem(atPath: full)
            let fileSize = (attrs[.size] as? NSNumber)?.uint64Value ?? 0
            try emit(le32(UInt32(pathBytes.count)) + pathBytes + le64(fileSize))
            guard let fh = FileHandle(forReadingAtPath: full) else { throw SweepError.io("cannot read \(full)") }
            var copied: UInt64 = 0
            while true {
                let d = try fh.read(upToCount: 1 << 20) ?? Data()
                if d.isEmpty { break }
                copied += UInt64(d.count)
                try emit(Array(d))
            }
            try? fh.close()
            guard copied == fileSize else { throw SweepError.io("\(full) changed while being packed") }
        }
        try emit(le32(0))
        return (hasher.finish(), size)
    }

    /// Unpacks into `directory` (created; must not exist), rejecting unsafe paths and truncation.
    public static func unpack(archive archivePath: String, to directory: String) throws {
        guard let data = FileManager.default.contents(atPath: archivePath) else { throw SweepError.io("cannot read \(archivePath)") }
        let bytes = [UInt8](data)
        guard bytes.count >= 12, Array(bytes[0 ..< 8]) == magic else { throw SweepError.invalid("\(archivePath) is not a ranksweep archive") }
        var pos = 8
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, pos + n <= bytes.count else { throw SweepError.invalid("\(archivePath) is truncated") }
            defer { pos += n }
            return bytes[pos ..< pos + n]
        }
        try AtomicFile.makeDirectory(directory)
        while true {
            let len = Int(readLE(try take(4)))
            if len == 0 { break }
            guard len <= 4096, let rel = String(bytes: try take(len), encoding: .utf8) else { throw SweepError.invalid("\(archivePath): bad path entry") }
            let parts = rel.split(separator: "/", omittingEmptySubsequences: false)
            guard !rel.hasPrefix("/"), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
                throw SweepError.invalid("\(archivePath): unsafe path \(rel)")
            }
            let size = Int(readLE(try take(8)))
            let content = try take(size)
            let full = directory + "/" + rel
            try AtomicFile.makeDirectory((full as NSString).deletingLastPathComponent)
            guard FileManager.default.createFile(atPath: full, contents: Data(content)) else { throw SweepError.io("cannot write \(full)") }
        }
    }

    static func listFiles(_ root: String) throws -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root) else { throw SweepError.io("cannot list \(root)") }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            let full = root + "/" + rel
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue,
               (try? FileManager.default.destinationOfSymbolicLink(atPath: full)) == nil {
                out.append(rel)
            }
        }
        return out
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0 ..< 4).map { UInt8((v >> (8 * $0)) & 0xff) } }
    static func le64(_ v: UInt64) -> [UInt8] { (0 ..< 8).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }
    static func readLE(_ s: ArraySlice<UInt8>) -> UInt64 {
        s.reversed().reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
    }
}
