import Basics
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import Sweep

/// The live dashboard's HTTP server (Hummingbird on SwiftNIO's own threads). It shares nothing
/// with the coordinator's ZeroMQ loop but the `DashboardFeed` the loop appends to: a refresher
/// task drains that feed into the models a few times a second, and requests only read the models.
/// Read-only: every route is a GET. Bounded: at most `maxConnections` connections, idle ones
/// closed, headers capped, at most `maxStreams` live update streams each closed after
/// `streamLifetime` (the browser's EventSource reconnects by itself).
public final class DashboardServer: Sendable {
    public struct Limits: Sendable {
        public var maxConnections = 64
        public var maxStreams = 32
        public var streamLifetime: Double = 600
        public var idleTimeout: Int64 = 30
        public var maxHeaderBytes = 16 * 1024
        public init() {}
    }

    let models: [SweepModel]
    let access: DashboardAccess
    let address: HTTPAddress
    let limits: Limits
    let feed: DashboardFeed?
    let onnx: ONNXExports?
    let registry = PrometheusCollectorRegistry()
    let streams: StreamCount
    private let tasks = TaskBox()

    /// `feed`: the coordinator's events for the first (only) state dir; nil: `serve`, which
    /// reloads each state dir when its database changes.
    /// `onnxExporter`: a model file's ONNX bytes (the executable supplies ModelInterop's export: the
    /// dashboard never links the engine); nil: the ONNX links answer 404 with the command to use.
    public init(stateDirs: [String], feed: DashboardFeed?, address: HTTPAddress, access: DashboardAccess, limits: Limits = Limits(),
                onnxExporter: ONNXExports.Exporter? = nil) throws {
        guard !stateDirs.isEmpty else { throw SweepError.invalid("no state dir to serve") }
        guard feed == nil || stateDirs.count == 1 else { throw SweepError.invalid("a live dashboard serves one sweep") }
        var names = Set<String>()
        var models: [SweepModel] = []
        for dir in stateDirs {
            var name = (dir as NSString).lastPathComponent
            while names.contains(name) { name += "'" }
            names.insert(name)
            let model = try SweepModel(stateDir: dir, name: name, metrics: DashboardMetrics(registry: registry, sweep: name))
            models.append(model)
        }
        self.models = models
        streams = StreamCount(gauge: registry.makeGauge(name: "ranksweep_dashboard_streams", help: "Open live dashboard streams."))
        self.feed = feed
        onnx = onnxExporter.map(ONNXExports.init)
        self.address = address
        self.access = access
        self.limits = limits
    }

    /// Loads the sweeps, binds, and returns the URL once the server listens (port 0 resolved).
    /// The server and its refresher run until `stop()`.
    public func start() throws -> String {
        let loaded = DispatchSemaphore(value: 0)
        let loadError = ErrorBox()
        let models = self.models
        Task.detached {
            do { for m in models { try await m.reload() } } catch { loadError.set(error) }
            loaded.signal()
        }
        loaded.wait()
        if let e = loadError.get() { throw e }

        let bound = DispatchSemaphore(value: 0)
        let port = ErrorBox()
        var logger = Logger(label: "ranksweep.dashboard")
        logger.logLevel = .critical
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(
                idleTimeout: .seconds(limits.idleTimeout),
                httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes,
                                                maxHeaderFieldCount: 100))),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "ranksweep",
                                 availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections)),
            onServerRunning: { channel in
                port.setPort(channel.localAddress?.port ?? 0)
                bound.signal()
            },
            logger: logger)
        let serverTask = Task.detached {
            do { try await app.runService(gracefulShutdownSignals: []) } catch { port.set(error) }
            bound.signal()
        }
        tasks.add(serverTask)
        tasks.add(Task.detached { [self] in await refresh() })
        bound.wait()
        if let e = port.get() {
            stop()
            throw SweepError.io("cannot serve the dashboard on \(address.host):\(address.port): \(e)")
        }
        let host = address.host.contains(":") ? "[\(address.host)]" : address.host
        return "http://\(host):\(port.port)/"
    }

    /// Stops serving; `after` seconds first, so open pages get the sweep's final state (the
    /// refresher and the streams pick it up within half a second).
    public func stop(after seconds: Double = 0) {
        if seconds > 0 { usleep(UInt32(seconds * 1e6)) }
        tasks.cancelAll()
    }

    /// Live: drains the coordinator's feed five times a second. `serve`: checks the state dirs
    /// once a second.
    private func refresh() async {
        while !Task.isCancelled {
            if let feed {
                try? await Task.sleep(nanoseconds: 200_000_000)
                let batch = feed.drain()
                do { try await models[0].apply(batch) } catch { Log.warn("dashboard: \(error)") }
            } else {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                for m in models {
                    do { try await m.reloadIfChanged() } catch { Log.warn("dashboard: \(error)") }
                }
            }
        }
    }

    // MARK: routes

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: AccessMiddleware(access: access))
        router.get("/") { _, _ -> Response in Self.response(DashboardPage.html, type: "text/html; charset=utf-8") }
        router.get("/metrics") { [registry] _, _ -> Response in Self.response(registry.emitToString(), type: "text/plain; version=0.0.4") }
        router.get("/api/sweeps") { [models] _, _ -> Response in
            var list: [[String: Any]] = []
            for (i, m) in models.enumerated() { list.append(["index": i, "name": m.name, "stateDir": m.stateDir]) }
            return Self.json(list)
        }
        router.get("/api/summary") { [self] request, _ -> Response in
            Self.json(try await model(request).summaryJSON())
        }
        router.get("/api/jobs") { [self] request, _ -> Response in
            let m = try model(request)
            let q: JobQuery
            do { q = try JobQuery(Self.params(request)) } catch { return Self.badRequest("\(error)") }
            return Self.json(await m.jobsJSON(q))
        }
        router.get("/api/job") { [self] request, _ -> Response in
            let m = try model(request)
            guard let id = Self.params(request)["id"], id.count <= 200, let data = await m.jobJSON(id) else { return Self.notFound("no such job") }
            return Self.json(data)
        }
        router.get("/api/pareto") { [self] request, _ -> Response in
            // One sweep's points, or every sweep's (`sweep=all`, to compare them on one chart).
            let chosen = Self.params(request)["sweep"] == "all" ? Array(models.indices) : [try index(request)]
            var parts: [Data] = []
            for i in chosen { parts.append(await models[i].paretoJSON(sweep: i)) }
            var body = Data("{\"points\":[".utf8)
            for p in parts {
                let inner = p.dropFirst().dropLast()  // the array's elements, without its brackets
                if inner.isEmpty { continue }
                if body.last != UInt8(ascii: "[") { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: inner)
            }
            body.append(contentsOf: Array("]}".utf8))
            return Self.json(body)
        }
        router.get("/api/parallel") { [self] request, _ -> Response in
            Self.json(try await model(request).parallelJSON())
        }
        router.get("/api/events") { [self] request, _ -> Response in
            let m = try model(request)
            guard streams.enter(limit: limits.maxStreams) else {
                return Response(status: .serviceUnavailable, headers: [.retryAfter: "5"],
                                body: .init(byteBuffer: ByteBuffer(string: "too many live dashboards open (\(limits.maxStreams))\n")))
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                            body: ResponseBody { [streams, lifetime = limits.streamLifetime] writer in
                                defer { streams.leave() }
                                try await Self.stream(m, writer: &writer, lifetime: lifetime)
                            })
        }
        // A job's model as ONNX, converted on request (one at a time, the last few kept).
        router.get("/artifacts/:hash/onnx") { [self] request, context -> Response in
            let m = try model(request)
            guard let hash = context.parameters.get("hash"), SHA256Hasher.isValidHex(hash), hash.count == 64, await m.hasArtifact(hash) else {
                return Self.notFound("no such artifact in this sweep")
            }
            guard let onnx else {
                return Self.notFound("ONNX export is not available from this server: run `ranksweep export --state-dir \(m.stateDir) --job JOB --onnx FILE`")
            }
            let data: Data
            do { data = try await onnx.export(hash: hash, path: m.stateDir + "/artifacts/" + hash) } catch {
                return Response(status: .unprocessableContent, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "artifact \(hash) is not a model ONNX can be made of: \(error)\n")))
            }
            let base = (Self.params(request)["name"] ?? hash).filter { $0.isLetter || $0.isNumber || ".-_".contains($0) }.prefix(100)
            let name = (base.isEmpty ? hash : String(base)).replacingOccurrences(of: ".safetensors", with: "") + ".onnx"
            return Response(status: .ok, headers: [.contentType: "application/octet-stream",
                                                   .contentDisposition: "attachment; filename=\"\(name)\""],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/artifacts/:hash") { [self] request, context -> Response in
            let m = try model(request)
            guard let hash = context.parameters.get("hash"), SHA256Hasher.isValidHex(hash), hash.count == 64, await m.hasArtifact(hash) else {
                return Self.notFound("no such artifact in this sweep")
            }
            let path = m.stateDir + "/artifacts/" + hash
            guard let data = FileManager.default.contents(atPath: path) else { return Self.notFound("artifact \(hash) is not in \(m.stateDir)/artifacts") }
            let name = (Self.params(request)["name"] ?? hash).filter { $0.isLetter || $0.isNumber || ".-_".contains($0) }.prefix(100)
            return Response(status: .ok, headers: [.contentType: "application/octet-stream",
                                                   .contentDisposition: "attachment; filename=\"\(name.isEmpty ? hash : String(name))\""],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return router
    }

    /// Server-Sent Events: the summary now and after every change, at most one a second (a burst of
    /// changes is one event), a comment every 15 s to keep proxies from closing it.
    static func stream(_ m: SweepModel, writer: inout any ResponseBodyWriter, lifetime: Double) async throws {
        let start = monotonicSeconds()
        var sent = -1
        var lastWrite = start
        try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
        while !Task.isCancelled && monotonicSeconds() - start < lifetime {
            let version = await m.version
            if version != sent {
                let data = await m.summaryJSON()
                try await writer.write(ByteBuffer(string: "event: update\ndata: " + String(decoding: data, as: UTF8.self) + "\n\n"))
                sent = version
                lastWrite = monotonicSeconds()
            } else if monotonicSeconds() - lastWrite > 15 {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                lastWrite = monotonicSeconds()
            }
            try await Task.sleep(nanoseconds: 1_000_000_000)
        }
        try await writer.finish(nil)
    }

    func model(_ request: Request) throws -> SweepModel { models[try index(request)] }

    /// `sweep=I` (default 0).
    func index(_ request: Request) throws -> Int {
        guard let s = Self.params(request)["sweep"], s != "all" else { return 0 }
        guard let i = Int(s), models.indices.contains(i) else { throw HTTPError(.notFound, message: "sweep=\(s.prefix(20)): no such sweep") }
        return i
    }

    static func params(_ request: Request) -> [String: String] {
        var d: [String: String] = [:]
        for (k, v) in request.uri.queryParameters.prefix(32) { d[String(k)] = String(v) }
        return d
    }

    static func response(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ object: Any) -> Response {
        json((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }

    static func json(_ data: Data) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ message: String) -> Response {
        Response(status: .badRequest, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    static func notFound(_ message: String) -> Response {
        Response(status: .notFound, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}

/// The token check in front of every route (a no-op on loopback without `--http-token`).
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: DashboardAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let query = DashboardServer.params(request)
        switch access.check(authorization: request.headers[.authorization], cookie: request.headers[.cookie], queryToken: query["token"]) {
        case .allowed:
            return try await next(request, context)
        case .setCookie:
            // Back to the same URL without the token, now carrying the cookie.
            let rest = query.filter { $0.key != "token" }.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            return Response(status: .seeOther, headers: [.location: request.uri.path + (rest.isEmpty ? "" : "?" + rest),
                                                          .setCookie: access.setCookieHeader])
        case .refused(let why):
            return Response(status: .unauthorized, headers: [.contentType: "text/plain", .wwwAuthenticate: "Bearer"],
                            body: .init(byteBuffer: ByteBuffer(string: "refused: \(why)\n")))
        }
    }
}

/// Open live streams, capped.
final class StreamCount: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0
    private let gauge: Gauge
    init(gauge: Gauge) { self.gauge = gauge }
    func enter(limit: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard open < limit else { return false }
        open += 1
        gauge.set(Double(open))
        return true
    }
    func leave() { lock.lock(); open -= 1; gauge.set(Double(open)); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return open }
}

/// The server's tasks, cancelled together by `stop()`.
final class TaskBox: @unchecked Sendable {
    private let lock = NSLock()
    private var tasks: [Task<Void, Never>] = []
    func add(_ t: Task<Void, Never>) { lock.lock(); tasks.append(t); lock.unlock() }
    func cancelAll() { lock.lock(); let t = tasks; tasks = []; lock.unlock(); for x in t { x.cancel() } }
}

/// A value handed from a task to the thread waiting for it.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    private(set) var port = 0
    func set(_ e: any Error) { lock.lock(); error = e; lock.unlock() }
    func get() -> (any Error)? { lock.lock(); defer { lock.unlock() }; return error }
    func setPort(_ p: Int) { lock.lock(); port = p; lock.unlock() }
}

/// ONNX conversions for the dashboard's links: serialised (an actor, so a client that asks again and
/// again costs one conversion at a time) and the last `capacity` kept by artifact hash.
public actor ONNXExports {
    public typealias Exporter = @Sendable (_ modelPath: String) throws -> Data
    let exporter: Exporter
    let capacity = 8
    var kept: [(hash: String, data: Data)] = []

    public init(_ exporter: @escaping Exporter) { self.exporter = exporter }

    func export(hash: String, path: String) throws -> Data {
        if let i = kept.firstIndex(where: { $0.hash == hash }) {
            let hit = kept.remove(at: i)
            kept.append(hit)
            return hit.data
        }
        let data = try exporter(path)
        kept.append((hash, data))
        if kept.count > capacity { kept.removeFirst() }
        return data
    }
}
