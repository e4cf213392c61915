import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one progress renderer (train, compress, run and the coordinator): on a terminal, a bar with
/// ETA and optional detail lines under it, redrawn in place on stderr; otherwise plain dated log
/// lines at most every `plainInterval` seconds. Owned by one thread.
///
/// ```
/// epoch 3/8 [##########..................] 5/12  eta 14s  (all epochs: 2m10s)  loss 0.4132
/// ```
public final class ProgressDisplay {
    public enum Mode: String, Sendable { case auto, plain, none }

    public let isTerminal: Bool
    let enabled: Bool
    let plainInterval: Double
    var lastPlain = -Double.infinity
    var lastDraw = -Double.infinity
    var drawnLines = 0

    public init(mode: Mode = .auto, plainInterval: Double = 5) {
        enabled = mode != .none
        isTerminal = mode == .auto && isatty(2) == 1
        self.plainInterval = plainInterval
    }

    /// `[####......]`: `width` glyphs, `#` done, `.` to do.
    public static func bar(fraction: Double, width: Int = 28) -> String {
        let f = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let filled = Int(f * Double(width))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    /// Shows `label [bar] done/total  eta E  detail`, plus `lines` under it on a terminal.
    /// `eta` is the caller's estimate of the seconds left (nil: not known yet). Redraws at most
    /// every 0.2 s on a terminal; `force` draws now (a final state).
    public func update(_ label: String, done: Int, total: Int, eta: Double?, detail: String = "",
                       lines: [String] = [], force: Bool = false) {
        guard enabled else { return }
        let now = monotonicSeconds()
        let fraction = total > 0 ? Double(done) / Double(total) : 0
        let etaText = eta.map { "  eta \(formatDuration($0))" } ?? ""
        let head = "\(label) \(Self.bar(fraction: fraction)) \(done)/\(total)\(etaText)\(detail.isEmpty ? "" : "  " + detail)"
        if isTerminal {
            guard force || done >= total || now - lastDraw >= 0.2 else { return }
            lastDraw = now
            draw([head] + lines)
        } else {
            guard force || done >= total || now - lastPlain >= plainInterval else { return }
            lastPlain = now
            Log.writeLine("\(Log.timestamp()) \(label) \(done)/\(total)\(etaText)\(detail.isEmpty ? "" : "  " + detail)")
        }
    }

    /// A line that stays, on stdout (the bar is cleared first and redrawn by the next update).
    public func line(_ text: String) {
        clear()
        print(text)
    }

    /// Removes the bar from a terminal (before other output, or at the end).
    public func clear() {
        guard isTerminal, drawnLines > 0 else { return }
        var out = "\u{1b}[\(drawnLines)A"
        for _ in 0 ..< drawnLines { out += "\u{1b}[2K\n" }
        out += "\u{1b}[\(drawnLines)A"
        drawnLines = 0
        Self.writeStderr(out)
    }

    /// Leaves the last drawn bar on screen and starts output below it.
    public func finish() { drawnLines = 0 }

    func draw(_ lines: [String]) {
        var out = drawnLines > 0 ? "\u{1b}[\(drawnLines)A" : ""
        for l in lines { out += "\u{1b}[2K" + l + "\n" }
        // Fewer lines than last time: blank the rest, then come back up.
        if drawnLines > lines.count {
            for _ in lines.count ..< drawnLines { out += "\u{1b}[2K\n" }
            out += "\u{1b}[\(drawnLines - lines.count)A"
        }
        drawnLines = lines.count
        Self.writeStderr(out)
    }

    static func writeStderr(_ s: String) {
        s.utf8CString.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count - 1) }
    }
}

/// Estimates time left from work done so far: `elapsed / done * left`, nil until something is done.
public struct ETAEstimator: Sendable {
    let start: Double

    public init(start: Double = monotonicSeconds()) { self.start = start }

    /// Seconds left when `done` of `total` units took the time since `start`.
    public func secondsLeft(done: Double, total: Double, now: Double = monotonicSeconds()) -> Double? {
        guard done > 0, total >= done else { return nil }
        return (now - start) / done * (total - done)
    }
}
