import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
@testable import Sweep

/// The dashboard in a real headless Chromium (Debian's `chromium`, from `scripts/install-deps.sh
/// --test`) against a real coordinator and worker running the small real sweep (train + compress).
/// Chromium's `--dump-dom` after `--timeout` gives the DOM the page built while it stayed open; the
/// page's `#timeline` holds one entry per live update, so a reload (which would empty it) cannot
/// pass for an update. The network is blocked for everything but loopback (a dead proxy, and
/// every host name unresolvable). Screenshots and DOM dumps stay in the test's temp dir.
final class DashboardBrowserTests: XCTestCase {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func browse(_ url: String, dir: String, name: String, seconds: Int, screenshot: Bool = false) throws -> TestChild {
        let chromium = try XCTUnwrap(Self.chromium, "chromium is not installed: run scripts/install-deps.sh --test")
        var args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--user-data-dir=\(dir)/chromium-\(name)", "--timeout=\(seconds * 1000)", "--window-size=1400,1150",
                    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
        args.append(screenshot ? "--screenshot=\(dir)/\(name).png" : "--dump-dom")
        return try TestChild(chromium, args + [url], environment: ProcessInfo.processInfo.environment, log: "\(dir)/\(name).html")
    }

    /// `attribute="value"` pairs of each `<li>` of the timeline.
    static func timeline(_ dom: String) -> [[String: Int]] {
        guard let start = dom.range(of: "<ol id=\"timeline\">"), let end = dom.range(of: "</ol>", range: start.upperBound ..< dom.endIndex) else { return [] }
        return dom[start.upperBound ..< end.lowerBound].components(separatedBy: "<li ").dropFirst().map { li in
            var d: [String: Int] = [:]
            let regex = try! NSRegularExpression(pattern: "data-([a-z-]+)=\"(\\d+)\"")
            for m in regex.matches(in: li, range: NSRange(li.startIndex..., in: li)) {
                d[String(li[Range(m.range(at: 1), in: li)!])] = Int(li[Range(m.range(at: 2), in: li)!])
            }
            return d
        }
    }

    static func count(_ dom: String, _ needle: String) -> Int { dom.components(separatedBy: needle).count - 1 }

    static func get(_ url: String, token: String) -> String? {
        var request = URLRequest(url: URL(string: url)!)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var text: String?
        URLSession.shared.dataTask(with: request) { data, _, _ in text = data.map { String(decoding: $0, as: UTF8.self) }; done.signal() }.resume()
        done.wait()
        return text
    }

    func testDashboardLiveInChromium() throws {
        let yaml = try String(contentsOfFile: Harness.root + "/Tests/Fixtures/small-sweep.yaml", encoding: .utf8)
        let c = Cluster("dashboard", sweep: yaml)
        let http = Harness.freePort()
        let coord = try c.startCoordinator(extra: ["--http", "127.0.0.1:\(http)", "--http-token"])
        let regex = try NSRegularExpression(pattern: "dashboard at (http://127\\.0\\.0\\.1:\\d+/)\\?token=([0-9a-f]{64})")
        let out = coord.output
        let m = try XCTUnwrap(regex.firstMatch(in: out, range: NSRange(out.startIndex..., in: out)), out)
        let base = String(out[Range(m.range(at: 1), in: out)!]), token = String(out[Range(m.range(at: 2), in: out)!])
        let jobs = try c.store().jobs()
        let train = try XCTUnwrap(jobs.first { $0.kind == "train" })
        let epochs = 2  // baseline epochs of small-sweep.yaml

        // The page opens before any worker exists, follows the sweep for 40 s, then its DOM is dumped.
        let live = try browse(base + "?token=\(token)#job=\(train.id)", dir: c.dir, name: "live", seconds: 40)
        eventually(30, "the page's live stream connected") {
            (Self.get(base + "metrics", token: token) ?? "").contains("ranksweep_dashboard_streams 1")
        }
        try c.startWorker("a", extra: ["--slots", "2"])
        XCTAssertEqual(coord.wait(120), 0, coord.output)
        let doneJobs = try c.store().jobs().filter { $0.state == .done }.count
        XCTAssertEqual(doneJobs, jobs.count)
        live.waitUntilExit()
        let dom = try String(contentsOfFile: c.dir + "/live.html", encoding: .utf8)
        let updates = Self.timeline(dom)
        XCTAssertGreaterThanOrEqual(updates.count, 3, dom)
        // The table filled and changed state without a reload: one page, first nothing done, then all.
        XCTAssertEqual(updates.first?["done"], 0, "\(updates)")
        XCTAssertEqual(updates.last?["done"], jobs.count, "\(updates)")
        XCTAssertEqual(updates.last?["rows-done"], jobs.count, "\(updates)")
        XCTAssertEqual(Self.count(dom, "data-state=\"done\""), jobs.count)
        // The Pareto chart gained points: none at first, every train and compress job at the end.
        XCTAssertEqual(updates.first?["pareto"], 0)
        XCTAssertEqual(updates.last?["pareto"], jobs.count, "\(updates)")
        XCTAssertEqual(Self.count(dom, "class=\"pt\""), jobs.count)
        // The baseline's curve: one point per epoch (for each metric it reported).
        XCTAssertEqual(updates.last?["curve"], epochs, "\(updates)")
        XCTAssertTrue(dom.contains("data-epoch=\"1\"") && dom.contains("data-epoch=\"\(epochs)\"") && !dom.contains("data-epoch=\"\(epochs + 1)\""))
        // Everything the page fetched came from the coordinator.
        XCTAssertTrue(dom.contains("<ul id=\"resources\"><li>http://127.0.0.1:\(http)</li></ul>"), dom)

        // The finished sweep, read-only, by `serve`: the token is refused when wrong, accepted when right.
        let servePort = Harness.freePort()
        let serve = try Proc(["serve", "--state-dir", c.stateDir, "--http", "127.0.0.1:\(servePort)", "--http-token"], log: c.dir + "/serve.log")
        defer { serve.term(); serve.wait(10) }
        eventually(20, "serve listening") { serve.output.contains("dashboard at") }
        XCTAssertTrue(serve.output.contains("token required"), serve.output)
        let url = "http://127.0.0.1:\(servePort)/"
        let wrong = try browse(url + "?token=" + String(repeating: "0", count: 64), dir: c.dir, name: "wrong-token", seconds: 5)
        let right = try browse(url + "?token=\(token)#job=\(train.id)", dir: c.dir, name: "right-token", seconds: 8)
        let shot = try browse(url + "?token=\(token)#job=\(train.id)", dir: c.dir, name: "dashboard", seconds: 8, screenshot: true)
        wrong.waitUntilExit(); right.waitUntilExit(); shot.waitUntilExit()
        let refused = try String(contentsOfFile: c.dir + "/wrong-token.html", encoding: .utf8)
        XCTAssertTrue(refused.contains("refused: wrong token") && !refused.contains("id=\"jobs\""), refused)
        let accepted = try String(contentsOfFile: c.dir + "/right-token.html", encoding: .utf8)
        XCTAssertEqual(Self.count(accepted, "data-state=\"done\""), jobs.count, accepted)
        XCTAssertEqual(Self.timeline(accepted).last?["curve"], epochs, accepted)
        let png = (try? FileManager.default.attributesOfItem(atPath: c.dir + "/dashboard.png")[.size] as? Int) ?? 0
        XCTAssertGreaterThan(png, 20_000, "a screenshot of the dashboard in \(c.dir)")
        if let keep = ProcessInfo.processInfo.environment["RANKSWEEP_DASHBOARD_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: c.dir + "/dashboard.png", toPath: keep)
        }
    }
}
