import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Log lines go to stderr, one `write(2)` each, so lines from several threads never interleave
/// and nothing sits in a buffer when the process is killed. Each line starts with an ISO 8601
/// time with date and zone (Slurm logs run for days): `2026-11-30T02:50:01.123+00:00 worker w1 info: ...`.
public enum Log {
    public enum Level: Int, Comparable, Sendable, CaseIterable {
        case debug = 0, info, warn, error

        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warn", "warning": self = .warn
            case "error": self = .error
            default: return nil
            }
        }

        public var name: String { ["debug", "info", "warn", "error"][rawValue] }
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    /// Prefix naming the process ("coordinator", "worker w1"), set once at start.
    nonisolated(unsafe) public static var role = "ranksweep"
    /// Lines below this level are dropped (set once at start: `--log-level`, `-q`, `-v`,
    /// or the environment variable RANKSWEEP_LOG_LEVEL, which child processes inherit).
    nonisolated(unsafe) public static var level: Level = Level(name: ProcessInfo.processInfo.environment["RANKSWEEP_LOG_LEVEL"] ?? "") ?? .info

    /// Sets the level here and, through RANKSWEEP_LOG_LEVEL, in every child started from now on.
    public static func setLevelForThisProcessAndChildren(_ newLevel: Level) {
        level = newLevel
        setenv("RANKSWEEP_LOG_LEVEL", newLevel.name, 1)
    }

    public static func debug(_ message: @autoclosure () -> String) { if level <= .debug { emit(.debug, message()) } }
    public static func info(_ message: @autoclosure () -> String) { if level <= .info { emit(.info, message()) } }
    public static func warn(_ message: @autoclosure () -> String) { if level <= .warn { emit(.warn, message()) } }
    public static func error(_ message: @autoclosure () -> String) { emit(.error, message()) }

    static func emit(_ level: Level, _ message: String) {
        writeLine("\(timestamp()) \(role) \(level.name): \(message)")
    }

    /// Writes one line to stderr in a single `write(2)`.
    public static func writeLine(_ line: String) {
        (line + "\n").utf8CString.withUnsafeBufferPointer { buf in
            _ = write(2, buf.baseAddress, buf.count - 1)
        }
    }

    /// Local time, ISO 8601 with milliseconds and the zone offset.
    public static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        localtime_r(&t, &tmv)
        let off = tmv.tm_gmtoff / 60
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03d%@%02d:%02d",
                      Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec),
                      Int(tv.tv_usec) / 1000, off < 0 ? "-" : "+", abs(off) / 60, abs(off) % 60)
    }
}
