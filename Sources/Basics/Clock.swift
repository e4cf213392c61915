import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic clock in seconds, for durations, expiries and latencies (wall time jumps would break them).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds used by this process so far (user + system, all threads).
public func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Wall-clock seconds since 1970, for records in the store and log lines (not for durations:
/// wall time jumps; use `monotonicSeconds`).
public func wallClockSeconds() -> Double { Date().timeIntervalSince1970 }

/// "42s", "3m07s", "1h05m": durations and ETAs in every progress display and log.
public func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m"
        : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
}
