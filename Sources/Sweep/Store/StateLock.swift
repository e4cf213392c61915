import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a state dir (`flock` on `STATE/coordinator.lock`), held by the coordinator
/// while it runs, so a command that writes the store behind its back (`retry`) can refuse instead
/// of racing it. The kernel drops the lock when the holder exits, even on SIGKILL: a stale lock
/// file never blocks anyone. The file holds the holder's pid, for the message.
public final class StateLock {
    public static let fileName = "coordinator.lock"
    let fd: Int32

    /// Takes the lock or throws naming the process that holds it. `purpose` says what is refused.
    public init(stateDir: String, purpose: String) throws {
        let path = stateDir + "/" + StateLock.fileName
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SweepError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = StateLock.holder(fd)
            close(fd)
            throw SweepError.invalid("state dir \(stateDir) is in use by a running coordinator\(holder.map { " (pid \($0))" } ?? ""): \(purpose)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, pid.count, 0) }
    }

    static func holder(_ fd: Int32) -> String? {
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 32, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buf[0 ..< n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int(text).map(String.init)
    }

    deinit { close(fd) }
}
