import Foundation
import XCTest
@testable import Dashboard
@testable import Sweep

/// The dashboard without a browser: the server-side job table, the token, the bounded feed, and
/// the real HTTP server on loopback over a real state dir. (The browser test is in SweepTests.)
final class DashboardTests: XCTestCase {
    /// 20,000 jobs: filter, sort and page server-side match a brute-force answer; bad parameters
    /// are refused with what was wrong.
    func testJobTableQueriesAt20000Jobs() throws {
        let states: [JobState] = [.queued, .running, .done, .failed]
        var jobs: [JobView] = []
        for i in 0 ..< 20_000 {
            var j = JobView(id: String(format: "job-%05d", i), kind: i % 3 == 0 ? "train" : "compress", seq: i, state: states[i % 4],
                            attempt: i % 3, worker: "w\(i % 7)", settings: ["rank": .number(Double(i % 13))])
            if j.state == .done { j.figures.dice = Double((i * 7919) % 1000) / 1000; j.figures.parameters = Double(i % 50) }
            jobs.append(j)
        }
        let q = try JobQuery(["state": "done", "sort": "dice", "dir": "desc", "page": "3", "size": "50"])
        let started = Date()
        let (matched, rows) = q.run(jobs)
        let seconds = Date().timeIntervalSince(started)
        let expected = jobs.filter { $0.state == .done }.sorted { ($0.figures.dice!, -$0.seq) > ($1.figures.dice!, -$1.seq) }
        XCTAssertEqual(matched, 5000)
        XCTAssertEqual(rows.map(\.id), expected[150 ..< 200].map(\.id))
        print("query over 20000 jobs: \(String(format: "%.1f", seconds * 1000)) ms")

        let byText = try JobQuery(["q": "JOB-0001", "sort": "axis:rank"]).run(jobs)
        XCTAssertEqual(byText.matched, 10)  // job-00010 ... job-00019
        XCTAssertEqual(byText.rows.map { $0.settings["rank"] }, byText.rows.map { $0.settings["rank"] }.sorted { a, b in
            if case .number(let x)? = a, case .number(let y)? = b { return x < y }
            return false
        })

        for bad in [["size": "0"], ["size": "501"], ["page": "-1"], ["sort": "password"], ["dir": "up"], ["state": "done,sleeping"],
                    ["q": String(repeating: "x", count: 101)]] {
            XCTAssertThrowsError(try JobQuery(bad), "\(bad)") { e in XCTAssertTrue("\(e)".hasPrefix(bad.keys.first!), "\(e)") }
        }
    }

    /// A compress job shows the model it kept (`final`, chosen on validation), not the last
    /// fine-tuning epoch; a budget sweep's jobs are labelled by their plan.
    func testFiguresAreTheKeptModelsAndBudgetJobsSayWhichPlan() {
        let result = #"{"afterFineTune": {"dice": 0.80}, "final": {"dice": 0.91}, "summary": {"parametersAfter": 1200, "flopsAfter": 5e6}, "diceRecoveryPercent": 99.5}"#
        let f = ResultFigures(resultJSON: result)
        XCTAssertEqual(f.dice, 0.91)
        XCTAssertEqual(f.parameters, 1200)
        XCTAssertEqual(f.recovery ?? 0, 0.995, accuracy: 1e-12)
        XCTAssertEqual(ResultFigures(resultJSON: #"{"afterFineTune": {"dice": 0.8}, "summary": {"parametersAfter": 1}}"#).dice, 0.8, "older results")
        let settings: [String: Setting] = ["method": .text("allocated"), "plan": .text("params 20%")]
        XCTAssertEqual(JobView(id: "budget-p0.2-s42", kind: "compress", seq: 1, state: .done, attempt: 1, settings: settings).label, "budget params 20%")
        XCTAssertEqual(JobView(id: "uniform-svd-p0.2-s42", kind: "compress", seq: 2, state: .done, attempt: 1, settings: settings).label, "uniform svd params 20%")
        XCTAssertEqual(JobView(id: "svd-r8-s42", kind: "compress", seq: 3, state: .done, attempt: 1, settings: ["method": .text("svd"), "rank": .number(8)]).label, "svd r=8")
    }

    func testTokenAndAddress() throws {
        let open = DashboardAccess(token: nil)
        XCTAssertEqual(open.check(authorization: nil, cookie: nil, queryToken: nil), .allowed)
        let t = String(repeating: "ab", count: 32)
        let a = DashboardAccess(token: t)
        XCTAssertEqual(a.check(authorization: "Bearer " + t, cookie: nil, queryToken: nil), .allowed)
        XCTAssertNotEqual(a.check(authorization: "Bearer " + t.dropLast() + "c", cookie: nil, queryToken: nil), .allowed)
        XCTAssertNotEqual(a.check(authorization: nil, cookie: nil, queryToken: nil), .allowed)
        XCTAssertEqual(a.check(authorization: nil, cookie: nil, queryToken: t), .setCookie)
        XCTAssertNotEqual(a.check(authorization: nil, cookie: nil, queryToken: "x"), .setCookie)
        XCTAssertEqual(a.check(authorization: nil, cookie: "x=1; ranksweep_dashboard=\(t)", queryToken: nil), .allowed)
        XCTAssertNotEqual(a.check(authorization: nil, cookie: "ranksweep_dashboard=\(t)0", queryToken: nil), .allowed)

        XCTAssertEqual(try HTTPAddress(parsing: "127.0.0.1:8080"), try HTTPAddress(parsing: "127.0.0.1:8080"))
        XCTAssertTrue(try HTTPAddress(parsing: "[::1]:0").isLoopback)
        XCTAssertFalse(try HTTPAddress(parsing: "0.0.0.0:80").isLoopback)
        for bad in ["8080", "host:99999", ":80", "[::1]80"] { XCTAssertThrowsError(try HTTPAddress(parsing: bad), bad) }

        let dir = NSTemporaryDirectory() + "dash-token-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (first, created) = try DashboardAccess.load(stateDir: dir)
        let (again, createdAgain) = try DashboardAccess.load(stateDir: dir)
        XCTAssertTrue(created)
        XCTAssertFalse(createdAgain)
        XCTAssertEqual(first.token, again.token)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/dashboard.token")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
    }

    /// The coordinator's side never waits and never grows past the capacity: overflow drops the
    /// queue and asks for a reload instead.
    func testFeedIsBounded() {
        let feed = DashboardFeed(capacity: 100)
        let e = SweepEvent.jobState(job: "a", state: .running, attempt: 1, worker: "w", reason: nil)
        feed.publish(Array(repeating: e, count: 60))
        var b = feed.drain()
        XCTAssertEqual(b.events.count, 60)
        XCTAssertFalse(b.overflowed)
        for _ in 0 ..< 10 { feed.publish(Array(repeating: e, count: 30)) }
        b = feed.drain()
        XCTAssertTrue(b.overflowed)
        XCTAssertLessThanOrEqual(b.events.count, 100)
        XCTAssertTrue(feed.drain().events.isEmpty)
    }

    /// The real server over a real state dir (a coordinator created in-process, not run): the
    /// page, the job table, /metrics, the token, oversized headers, the cap on live streams.
    func testServerOverAStateDir() async throws {
        let dir = NSTemporaryDirectory() + "dash-server-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir + "/state")
        o.sweep = try SweepSpec.parse(yaml: "sleep: {count: 120, seconds: 0.1}\n", file: "test")
        let coordinator = try Coordinator(options: o)
        let token = String(repeating: "0f", count: 32)
        var limits = DashboardServer.Limits()
        limits.maxStreams = 2
        let server = try DashboardServer(stateDirs: [o.stateDir], feed: nil, address: try HTTPAddress(parsing: "127.0.0.1:0"),
                                         access: DashboardAccess(token: token), limits: limits)
        let url = try server.start()
        defer { server.stop() }
        let port = Int(url.split(separator: ":").last!.dropLast())!
        let auth = "Authorization: Bearer \(token)\r\n"

        var r = try RawHTTP.get(port, "/api/jobs?size=10&sort=id&dir=desc")
        XCTAssertEqual(r.status, 401, r.text)
        r = try RawHTTP.get(port, "/api/jobs?size=10&sort=id&dir=desc", headers: "Authorization: Bearer \(token.dropLast())1\r\n")
        XCTAssertEqual(r.status, 401, r.text)
        r = try RawHTTP.get(port, "/api/jobs?size=10&sort=id&dir=desc", headers: auth)
        XCTAssertEqual(r.status, 200, r.text)
        let page = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])
        XCTAssertEqual(page["total"] as? Int, 120)
        XCTAssertEqual((page["rows"] as? [[String: Any]])?.count, 10)
        XCTAssertEqual((page["rows"] as? [[String: Any]])?.first?["state"] as? String, "queued")
        r = try RawHTTP.get(port, "/api/jobs?size=100000", headers: auth)
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertTrue(r.body.contains("size=100000"), r.body)

        // ?token= once: a cookie and a redirect; the cookie then opens the page.
        r = try RawHTTP.get(port, "/?token=\(token)")
        XCTAssertEqual(r.status, 303, r.text)
        let cookie = try XCTUnwrap(r.header("set-cookie"))
        XCTAssertTrue(cookie.contains("HttpOnly"), cookie)
        r = try RawHTTP.get(port, "/", headers: "Cookie: \(cookie.split(separator: ";")[0])\r\n")
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.body.contains("<svg id=\"pareto\""))
        XCTAssertFalse(r.body.contains("http://") || r.body.contains("https://"), "the page refers to nothing outside itself")

        r = try RawHTTP.get(port, "/metrics", headers: auth)
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.body.contains("ranksweep_jobs{sweep=\"state\",state=\"queued\"} 120.0"), r.body)
        XCTAssertTrue(r.body.contains("ranksweep_workers_alive"), r.body)

        // A header past the limit is refused, and the server still answers afterwards.
        r = try RawHTTP.get(port, "/", headers: auth + "X-Big: \(String(repeating: "a", count: 40_000))\r\n")
        XCTAssertNotEqual(r.status, 200)
        XCTAssertEqual(try RawHTTP.get(port, "/api/summary", headers: auth).status, 200)

        // Without an exporter (this server has none) an ONNX link says which command makes the file.
        r = try RawHTTP.get(port, "/artifacts/\(String(repeating: "a", count: 64))/onnx", headers: auth)
        XCTAssertEqual(r.status, 404, r.text)
        XCTAssertTrue(r.body.contains("no such artifact"), r.body)

        // Writes do not exist.
        XCTAssertNotEqual(try RawHTTP.get(port, "/api/jobs", method: "POST", headers: auth).status, 200)

        // Two live streams are allowed, the third is turned away.
        let s1 = try RawHTTP.openStream(port, "/api/events", headers: auth)
        let s2 = try RawHTTP.openStream(port, "/api/events", headers: auth)
        XCTAssertTrue(s1.contains("event: update") && s2.contains("\"total\":120"), s1 + s2)
        r = try RawHTTP.get(port, "/api/events", headers: auth)
        XCTAssertEqual(r.status, 503, r.text)
        _ = coordinator
    }
}

/// A minimal HTTP/1.1 client on a blocking socket, for what URLSession hides: status codes of
/// redirects, raw oversized headers, the first bytes of an event stream.
enum RawHTTP {
    struct Reply {
        var text: String
        var status: Int { Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0 }
        var body: String { text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n") }
        func header(_ name: String) -> String? {
            for line in text.components(separatedBy: "\r\n\r\n")[0].split(separator: "\r\n") {
                let kv = line.split(separator: ":", maxSplits: 1)
                if kv.count == 2 && kv[0].lowercased() == name { return kv[1].trimmingCharacters(in: .whitespaces) }
            }
            return nil
        }
    }

    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw NSError(domain: "connect", code: Int(errno)) }
        return fd
    }

    static func send(_ fd: Int32, _ path: String, method: String, headers: String) {
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(headers)\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    static func get(_ port: Int, _ path: String, method: String = "GET", headers: String = "") throws -> Reply {
        let fd = try connect(port)
        defer { close(fd) }
        send(fd, path, method: method, headers: headers)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0 ..< n]
        }
        return Reply(text: String(decoding: out, as: UTF8.self))
    }

    /// Opens an event stream and returns what arrived within the first update (the socket stays
    /// open: it is leaked on purpose until the test process ends, holding its stream slot).
    static func openStream(_ port: Int, _ path: String, headers: String) throws -> String {
        let fd = try connect(port)
        send(fd, path, method: "GET", headers: headers)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while !(String(decoding: out, as: UTF8.self).contains("event: update") && String(decoding: out, as: UTF8.self).contains("\"version\"")) {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0 ..< n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
