import CSupport
import Foundation
import Sweep

/// Progress for long work: a bar with ETA redrawn in place on a terminal, plain log lines otherwise
/// (at most one every few seconds, so logs stay readable).
final class TerminalProgress {
    let isTerminal = csupport_isatty(2) != 0
    private var lastPlain = 0.0
    private let start = Date()

    /// Draws `label [#####.....] done/total  eta` (or logs it plainly, rate-limited).
    func update(_ label: String, done: Int, total: Int, detail: String = "") {
        let now = Date().timeIntervalSince(start)
        let fraction = total > 0 ? Double(done) / Double(total) : 0
        let eta = fraction > 0 ? now / fraction - now : 0
        if isTerminal {
            let width = 28
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write("\r\u{1B}[K\(label) [\(bar)] \(done)/\(total) eta \(ProgressView.duration(eta)) \(detail)".data(using: .utf8)!)
        } else if now - lastPlain >= 5 || done == total {
            lastPlain = now
            FileHandle.standardError.write("\(label) \(done)/\(total) eta \(ProgressView.duration(eta)) \(detail)\n".data(using: .utf8)!)
        }
    }

    /// A line that stays (clears the bar first on a terminal).
    func line(_ text: String) {
        if isTerminal { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
        print(text)
    }
}
