import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Log lines go to stderr, one `write(2)` each, so lines from several threads never interleave
/// and nothing sits in a buffer when the process is killed.
public enum Log {
    /// Prefix naming the process ("coordinator", "worker w1"), set once at start.
    nonisolated(unsafe) public static var role = "ranksweep"
    /// Quiet mode for benchmarks: only warnings.
    nonisolated(unsafe) public static var quiet = false

    public static func info(_ message: @autoclosure () -> String) {
        if quiet { return }
        emit("info", message())
    }

    public static func warn(_ message: @autoclosure () -> String) { emit("warn", message()) }

    public static func error(_ message: @autoclosure () -> String) { emit("error", message()) }

    static func emit(_ level: String, _ message: String) {
        let line = "\(timestamp()) \(role) \(level): \(message)\n"
        line.utf8CString.withUnsafeBufferPointer { buf in
            _ = write(2, buf.baseAddress, buf.count - 1)
        }
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%02d:%02d:%02d.%03d", tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(tv.tv_usec) / 1000)
    }
}

/// Monotonic clock in seconds, for expiries and latencies (wall time jumps would break liveness).
public enum Clock {
    public static func now() -> Double { monotonicSeconds() }

    /// Wall-clock seconds since 1970, for records in the store.
    public static func wall() -> Double { Date().timeIntervalSince1970 }
}
