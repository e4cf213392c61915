import Basics
import Foundation

/// A directory of content-addressed files: `<dir>/<sha256>`. A file is only ever there complete and
/// verified (written to `<dir>/tmp/` and renamed), so "the file exists" means "we have it".
/// Used by the coordinator (state-dir/artifacts) and by each worker (cache-dir/artifacts).
public struct ArtifactStore: Sendable {
    public let dir: String

    public init(dir: String) throws {
        self.dir = dir
        try AtomicFile.makeDirectory(dir + "/tmp")
    }

    public func path(_ hash: String) -> String { dir + "/" + hash }

    public func has(_ hash: String) -> Bool { SHA256Hasher.isValidHex(hash) && Files.exists(path(hash)) }

    public func size(_ hash: String) -> Int64? {
        guard has(hash), let attrs = try? FileManager.default.attributesOfItem(atPath: path(hash)) else { return nil }
        return (attrs[.size] as? NSNumber)?.int64Value
    }

    /// Removes everything in `tmp/` (transfers a previous run left unfinished). Only for a
    /// directory this process alone writes: the coordinator's state dir.
    public func removeTemporaryFiles() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/tmp")) ?? [] { unlink(dir + "/tmp/" + name) }
    }

    public func tempPath(_ tag: String) -> String { dir + "/tmp/\(tag)-\(getpid())-\(UInt32.random(in: 0 ... .max))" }

    /// Copies a file in (hashing as it goes).
    public func importFile(_ source: String) throws -> (hash: String, size: Int64) {
        let tmp = tempPath("import")
        do { try FileManager.default.copyItem(atPath: source, toPath: tmp) } catch {
            throw SweepError.io("cannot copy \(source): \(error.localizedDescription)")
        }
        return try adopt(tmp)
    }

    /// Packs a folder (DirectoryArchive) and stores the archive.
    public func importDirectory(_ source: String) throws -> (hash: String, size: Int64) {
        let tmp = tempPath("pack")
        _ = try DirectoryArchive.pack(directory: source, to: tmp)
        return try adopt(tmp)
    }

    /// Moves a finished temp file in under its hash.
    public func adopt(_ tmp: String) throws -> (hash: String, size: Int64) {
        let (hash, size) = try SHA256Hasher.file(tmp)
        if has(hash) { unlink(tmp) } else if rename(tmp, path(hash)) != 0 {
            throw SweepError.io("cannot rename \(tmp) into \(dir)")
        }
        return (hash, size)
    }

    /// Reads up to `length` bytes at `offset`.
    public func read(_ hash: String, offset: Int64, length: Int) -> [UInt8]? {
        guard has(hash), let fh = FileHandle(forReadingAtPath: path(hash)) else { return nil }
        defer { try? fh.close() }
        do {
            try fh.seek(toOffset: UInt64(offset))
            return Array(try fh.read(upToCount: length) ?? Data())
        } catch { return nil }
    }
}

/// Receives one artifact chunk by chunk (in order: one ZeroMQ pipe keeps order), hashing as it
/// goes; on the last byte it checks the SHA-256 and only then renames the file into the store.
/// A corrupted or out-of-order chunk throws and deletes the partial file. The temp file is opened
/// per chunk, not held: a peer that starts uploads and never finishes them costs no descriptors.
public final class ArtifactReceiver {
    public let hash: String
    public let size: Int64
    public private(set) var received: Int64 = 0
    let store: ArtifactStore
    let tmp: String
    /// True while the temp file exists (not yet verified and renamed, nor aborted).
    var open = true
    var hasher = SHA256Hasher()

    public init(store: ArtifactStore, hash: String, size: Int64) throws {
        guard SHA256Hasher.isValidHex(hash) else { throw SweepError.protocolViolation("artifact hash \(hash.prefix(70)) is not a SHA-256 hex digest") }
        guard size >= 0 else { throw SweepError.protocolViolation("artifact \(hash.prefix(12)) has negative size") }
        self.store = store; self.hash = hash; self.size = size
        tmp = store.tempPath(String(hash.prefix(16)))
        guard FileManager.default.createFile(atPath: tmp, contents: nil) else { throw SweepError.io("cannot write \(tmp)") }
    }

    /// Adds a chunk; returns true when the artifact is complete and verified.
    public func accept(offset: Int64, bytes: [UInt8]) throws -> Bool {
        guard offset == received else { abort(); throw SweepError.protocolViolation("artifact \(hash.prefix(12)): chunk at \(offset), expected \(received)") }
        guard received + Int64(bytes.count) <= size else { abort(); throw SweepError.protocolViolation("artifact \(hash.prefix(12)): more bytes than its size \(size)") }
        guard open else { throw SweepError.protocolViolation("artifact \(hash.prefix(12)): transfer already closed") }
        if !bytes.isEmpty {
            do {
                guard let h = FileHandle(forWritingAtPath: tmp) else { throw SweepError.io("cannot open") }
                defer { try? h.close() }
                try h.seekToEnd()
                try h.write(contentsOf: bytes)
            } catch { abort(); throw SweepError.io("cannot write \(tmp): \(error)") }
        }
        hasher.update(bytes)
        received += Int64(bytes.count)
        if received < size { return false }
        open = false
        let got = hasher.finish()
        guard got == hash else {
            unlink(tmp)
            throw SweepError.protocolViolation("artifact \(hash.prefix(12)) failed verification (got \(got.prefix(12))), discarded")
        }
        if store.has(hash) { unlink(tmp) } else if rename(tmp, store.path(hash)) != 0 { throw SweepError.io("cannot store artifact \(hash.prefix(12))") }
        return true
    }

    public func abort() {
        if open { unlink(tmp) }
        open = false
    }

    deinit { abort() }
}
