import ArgumentParser
import Foundation
import Sweep

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a sweep's state from its state dir (read-only): jobs by state, workers, attempts, ETA.")

    @Option(name: .customLong("state-dir"), help: "The coordinator's state directory.")
    var stateDir: String

    func run() throws {
        try SweepCLI.guarded {
            let store = try SweepStore(stateDir: stateDir, readOnly: true)
            let byState = try store.rows("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
            let total = byState.reduce(0) { $0 + (Int($1["n"] ?? "") ?? 0) }
            print("sweep in \(stateDir): \(total) jobs — " + byState.map { "\($0["n"]!) \($0["state"]!)" }.joined(separator: ", "))
            let workers = try store.rows("SELECT id, host, slots, threads, state, last_seen FROM workers ORDER BY id")
            let running = try store.rows("SELECT id, attempt, worker, progress FROM jobs WHERE state = 'running' ORDER BY id")
            let now = Date().timeIntervalSince1970
            if !workers.isEmpty { print("workers:") }
            for w in workers {
                let ago = now - (Double(w["last_seen"] ?? "") ?? now)
                let jobs = running.filter { $0["worker"] == w["id"] }.map { r -> String in
                    var s = "\(r["id"]!) attempt \(r["attempt"]!)"
                    if let p = r["progress"], let d = p.data(using: .utf8),
                       let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any], let ep = o["epoch"] as? Int {
                        s += ", epoch \(ep)" + ((o["epochs"] as? Int).map { "/\($0)" } ?? "")
                    }
                    return s
                }
                print("  \(w["id"]!) on \(w["host"]!) (\(w["state"]!), \(w["slots"]!) slot(s), seen \(Int(ago))s ago): " +
                      (jobs.isEmpty ? "idle" : jobs.joined(separator: "; ")))
            }
            let attempts = try store.rows("SELECT COALESCE(outcome, 'running') AS o, COUNT(*) AS n FROM attempts GROUP BY o ORDER BY o")
            if !attempts.isEmpty { print("attempts: " + attempts.map { "\($0["n"]!) \($0["o"]!)" }.joined(separator: ", ")) }
            let done = try store.count("SELECT COUNT(*) FROM results")
            let first = try store.rows("SELECT MIN(started) AS s FROM attempts").first?["s"].flatMap(Double.init)
            let last = try store.rows("SELECT MAX(finished) AS f FROM results").first?["f"].flatMap(Double.init)
            let left = total - done - (try store.count("SELECT COUNT(*) FROM jobs WHERE state = 'failed'"))
            if let first, let last, done > 0, left > 0, last > first {
                let eta = Double(left) * (last - first) / Double(done)
                print("ETA: about \(Int(eta.rounded()))s at the rate so far (\(String(format: "%.2f", Double(done) / (last - first))) jobs/s)")
            } else if left == 0 {
                print("complete")
            }
            for f in try store.rows("SELECT id, reason FROM jobs WHERE state = 'failed' ORDER BY id LIMIT 20") {
                print("failed \(f["id"]!): \(f["reason"]!)")
            }
        }
    }
}
