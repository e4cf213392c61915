import Foundation
import XCTest
@testable import Sweep

/// The dashboard in a real headless Chromium (Debian's `chromium`, from `scripts/install-deps.sh
/// --test`), driven over the DevTools protocol, against a real coordinator and worker running the
/// small real sweep (a 2-epoch baseline and three compressions), then against `serve` on the
/// finished state dir. Screenshots stay in the test's temp dir.
final class DashboardBrowserTests: XCTestCase {
    /// What the page shows, read in the page. `start` is stamped once per page load and
    /// `timeline` holds one entry per live update received: a reload would change the first and
    /// empty the second.
    struct PageState {
        var start: String
        var navigations: Int
        var updates: Int
        var rows: [String: Int]
        var paretoPoints: Int
        var curveEpochs: [Int]
        var origins: [String]
        var text: String
    }

    static let stateScript = """
        (() => { try { return JSON.stringify({start: document.body.dataset.pageStart || "", navigations: performance.getEntriesByType("navigation").length,
          updates: document.querySelectorAll("#timeline li").length,
          rows: [...document.querySelectorAll("#jobs tbody tr")].map(r => r.dataset.state),
          pareto: document.querySelectorAll("#pareto circle.pt").length,
          epochs: [...new Set([...document.querySelectorAll("#curve circle.ep")].map(c => +c.dataset.epoch))].sort((a, b) => a - b),
          origins: [...document.querySelectorAll("#resources li")].map(l => l.textContent),
          text: document.body.innerText.slice(0, 2000)}) } catch (e) { return "{}" } })()
        """

    func state(_ browser: HeadlessChromium) throws -> PageState {
        // "{}" while a navigation is under way (no document body yet).
        let json = try browser.evaluate(Self.stateScript) as? String ?? "{}"
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        var rows: [String: Int] = [:]
        for s in o["rows"] as? [String] ?? [] { rows[s, default: 0] += 1 }
        return PageState(start: o["start"] as? String ?? "", navigations: o["navigations"] as? Int ?? 0, updates: o["updates"] as? Int ?? 0,
                         rows: rows, paretoPoints: o["pareto"] as? Int ?? 0, curveEpochs: o["epochs"] as? [Int] ?? [],
                         origins: o["origins"] as? [String] ?? [], text: o["text"] as? String ?? "")
    }

    /// Polls the page until `cond` holds; returns every state seen.
    func watch(_ browser: HeadlessChromium, _ seconds: Double, _ what: String, until cond: (PageState) -> Bool) throws -> [PageState] {
        var seen: [PageState] = []
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            let s = try state(browser)
            seen.append(s)
            if cond(s) { return seen }
            usleep(250_000)
        }
        XCTFail("timed out waiting for: \(what); last: \(String(describing: seen.last))")
        return seen
    }

    func testDashboardLiveInChromium() throws {
        // A baseline of 40 epochs that never stops early: long enough (seconds, even on a fast quiet
        // machine) for the page, updated at most once a second, to show the sweep between its states.
        let fixture = try String(contentsOfFile: Harness.root + "/Tests/Fixtures/small-sweep.yaml", encoding: .utf8)
        let yaml = fixture.replacingOccurrences(of: "baseline: {epochs: 2, batch_size: 4, lr: 0.003, patience: 5, lr_patience: 3,",
                                                with: "baseline: {epochs: 40, batch_size: 4, lr: 0.003, patience: 100, lr_patience: 100,")
        XCTAssertNotEqual(yaml, fixture, "the fixture's baseline line changed: update this test")
        let c = Cluster("dashboard", sweep: yaml)
        let coord = try c.startCoordinator(extra: ["--http", "127.0.0.1:0", "--http-token"])
        let regex = try NSRegularExpression(pattern: "dashboard at (http://127\\.0\\.0\\.1:\\d+/)\\?token=([0-9a-f]{64})")
        let out = coord.output
        let m = try XCTUnwrap(regex.firstMatch(in: out, range: NSRange(out.startIndex..., in: out)), out)
        let base = String(out[Range(m.range(at: 1), in: out)!]), token = String(out[Range(m.range(at: 2), in: out)!])
        let origin = String(base.dropLast())
        let jobs = try c.store().jobs()
        let train = try XCTUnwrap(jobs.first { $0.kind == "train" })
        let epochs = 40  // the baseline's epochs above

        let browser = try HeadlessChromium(dir: c.dir)
        // A wrong token is refused.
        try browser.navigate(base + "?token=" + String(repeating: "0", count: 64))
        var seen = try watch(browser, 30, "the refusal") { $0.text.contains("refused") }
        XCTAssertTrue(seen.last!.text.contains("refused: wrong token"), seen.last!.text)
        XCTAssertEqual(seen.last!.rows.count, 0)

        // The right one: opened before any worker exists, the page shows every job queued.
        try browser.navigate(base + "?token=\(token)#job=\(train.id)")
        seen = try watch(browser, 60, "the job table") { $0.updates >= 1 && $0.rows[JobState.queued.rawValue] == jobs.count }
        let first = seen.last!
        XCTAssertEqual(first.paretoPoints, 0)
        try browser.screenshot(to: c.dir + "/queued.png")

        try c.startWorker("a", extra: ["--slots", "2"])
        seen = try watch(browser, 180, "every job done on the page") {
            $0.rows[JobState.done.rawValue] == jobs.count && $0.paretoPoints == jobs.count && $0.curveEpochs.count == epochs
        }
        let last = seen.last!
        try browser.screenshot(to: c.dir + "/live.png")
        // No reload: the same page load throughout, which received several updates.
        XCTAssertEqual(last.start, first.start)
        XCTAssertEqual(last.navigations, 1)
        XCTAssertGreaterThan(last.updates, first.updates)
        // The table changed state in place: some state between all-queued and all-done was shown.
        XCTAssertTrue(seen.contains { ($0.rows[JobState.done.rawValue] ?? 0) > 0 && ($0.rows[JobState.done.rawValue] ?? 0) < jobs.count }
                      || seen.contains { ($0.rows[JobState.running.rawValue] ?? 0) > 0 }, "\(seen.map(\.rows))")
        // The Pareto chart gained points; the baseline's curve has one point per epoch.
        XCTAssertEqual(last.paretoPoints, jobs.count)
        XCTAssertEqual(last.curveEpochs, Array(1 ... epochs))
        // Everything the page fetched came from the coordinator (the rest of the network is blocked).
        XCTAssertEqual(last.origins, [origin])
        XCTAssertEqual(coord.wait(120), 0, coord.output)

        // The finished sweep, read-only, by `serve` (the token stays the state dir's).
        let serve = try Proc(["serve", "--state-dir", c.stateDir, "--http", "127.0.0.1:0", "--http-token"], log: c.dir + "/serve.log")
        defer { serve.term(); serve.wait(10) }
        eventually(30, "serve listening") { serve.output.contains("dashboard at") }
        XCTAssertTrue(serve.output.contains("token required"), serve.output)
        let serveURL = try XCTUnwrap(serve.output.components(separatedBy: "dashboard at ").last?.components(separatedBy: " ").first)
        try browser.navigate(serveURL + "?token=" + String(repeating: "1", count: 64))
        seen = try watch(browser, 30, "the refusal by serve") { $0.text.contains("refused") }
        try browser.navigate(serveURL + "?token=\(token)#job=\(train.id)")
        seen = try watch(browser, 60, "the finished sweep") {
            $0.rows[JobState.done.rawValue] == jobs.count && $0.paretoPoints == jobs.count && $0.curveEpochs.count == epochs
        }
        XCTAssertTrue(seen.last!.text.contains("complete"), seen.last!.text)
        // Each model's ONNX link answers a real ONNX file (ir_version first, ranksweep the producer),
        // converted by the server from the job's artifact.
        let onnx = try XCTUnwrap(try browser.evaluate("""
            (async () => { const links = [...document.querySelectorAll('a[href*="/onnx"]')];
              if (links.length == 0) return "{}";
              const r = await fetch(links[0].href); const b = new Uint8Array(await r.arrayBuffer());
              return JSON.stringify({links: links.length, status: r.status, size: b.length, first: b[0],
                text: new TextDecoder("latin1").decode(b.slice(0, 64))}) })()
            """) as? String)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(onnx.utf8)) as? [String: Any], onnx)
        XCTAssertEqual(o["links"] as? Int, jobs.count, "one ONNX link per model: \(onnx)")
        XCTAssertEqual(o["status"] as? Int, 200, onnx)
        XCTAssertEqual(o["first"] as? Int, 0x08, "an ONNX ModelProto opens with ir_version: \(onnx)")
        XCTAssertTrue((o["text"] as? String ?? "").contains("ranksweep"), onnx)
        XCTAssertGreaterThan(o["size"] as? Int ?? 0, 1000, onnx)
        let shot = c.dir + "/dashboard.png"
        try browser.screenshot(to: shot)
        let size = (try FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 20_000)
        if let keep = ProcessInfo.processInfo.environment["RANKSWEEP_DASHBOARD_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: shot, toPath: keep)
        }
    }

    /// A finished 20,000-job sweep in the browser: the table shows one page of 50 and pages, sorts
    /// and filters server-side. Prints the page's load time (navigation to the first complete
    /// render) and the bytes it transferred, measured by the page's own performance entries.
    func testTwentyThousandJobs() throws {
        let c = Cluster("dashboard20k", sweep: "noop: 20000\n")
        let run = try Proc(["run", c.dir + "/sweep.yaml", "--state-dir", c.stateDir, "--local-workers", "2", "--progress", "none"], log: c.dir + "/run.log")
        XCTAssertEqual(run.wait(600), 0, run.output)
        let serve = try Proc(["serve", "--state-dir", c.stateDir, "--http", "127.0.0.1:0"], log: c.dir + "/serve.log")
        defer { serve.term(); serve.wait(10) }
        eventually(60, "serve listening") { serve.output.contains("dashboard at") }
        let url = try XCTUnwrap(serve.output.components(separatedBy: "dashboard at ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        let browser = try HeadlessChromium(dir: c.dir)
        try browser.navigate(url)
        var seen = try watch(browser, 60, "the table's first page") { $0.updates >= 1 && $0.rows[JobState.done.rawValue] == 50 }
        let figures = try XCTUnwrap(try browser.evaluate("""
            JSON.stringify({ms: +document.querySelector("#timeline li").dataset.ms, bytes: +document.querySelector("#timeline li").dataset.bytes,
                            info: document.querySelector("#pageinfo").textContent})
            """) as? String)
        let f = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(figures.utf8)) as? [String: Any])
        XCTAssertEqual(f["info"] as? String, "1–50 of 20000", figures)
        print("dashboard at 20000 jobs: first complete render \(f["ms"] ?? "?") ms after navigation, \(f["bytes"] ?? "?") bytes transferred")
        // Sort by id, descending (two clicks on the header), and filter by text: answered by the server.
        _ = try browser.evaluate("document.querySelector('th[data-sort=id]').click()")
        seen = try watch(browser, 30, "sorted by id") { _ in
            (try? browser.evaluate("document.querySelector('#jobs tbody tr').dataset.job") as? String) == "noop-00001"
        }
        _ = try browser.evaluate("document.querySelector('th[data-sort=id]').click()")
        seen = try watch(browser, 30, "sorted by id, descending") { _ in
            (try? browser.evaluate("document.querySelector('#jobs tbody tr').dataset.job") as? String) == "noop-20000"
        }
        _ = try browser.evaluate("(() => { const f = document.querySelector('#q'); f.value = 'noop-1999'; f.dispatchEvent(new Event('input')) })()")
        seen = try watch(browser, 30, "filtered") { _ in
            (try? browser.evaluate("document.querySelector('#pageinfo').textContent") as? String) == "1–10 of 10 (of 20000)"
        }
        _ = seen
    }
}
