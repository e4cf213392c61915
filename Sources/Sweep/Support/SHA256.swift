import CSodium
import Foundation

/// SHA-256 through libsodium: the content address of every artifact.
public struct SHA256Hasher {
    private var state = crypto_hash_sha256_state()

    public init() {
        _ = SHA256Hasher.sodiumReady
        crypto_hash_sha256_init(&state)
    }

    /// libsodium must be initialised once before use; this is thread-safe and idempotent.
    static let sodiumReady: Bool = sodium_init() >= 0

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        crypto_hash_sha256_update(&state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public mutating func finish() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256_final(&state, &out)
        return out.map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        var h = SHA256Hasher()
        h.update(bytes)
        return h.finish()
    }

    /// Hashes a file in 1 MiB reads; returns (hex digest, size).
    public static func file(_ path: String) throws -> (hash: String, size: Int64) {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw SweepError.io("cannot read \(path)") }
        defer { try? fh.close() }
        var h = SHA256Hasher()
        var size: Int64 = 0
        while true {
            let data = try fh.read(upToCount: 1 << 20) ?? Data()
            if data.isEmpty { break }
            size += Int64(data.count)
            data.withUnsafeBytes { h.update($0) }
        }
        return (h.finish(), size)
    }

    /// True for a 64-character lower-case hex digest (also keeps hashes safe as file names).
    public static func isValidHex(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
