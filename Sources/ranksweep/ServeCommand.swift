import ArgumentParser
import Basics
import CommandLineOptions
import CSupport
import Dashboard
import Foundation
import ModelInterop

/// `--http ADDR` and `--http-token` on `run` and `coordinator`: the live dashboard of the sweep.
struct DashboardOptions: ParsableArguments {
    @Option(help: "Serve a live dashboard of the sweep at HOST:PORT (e.g. 127.0.0.1:8080; a non-loopback address needs the token).") var http: String?
    @Flag(name: .customLong("http-token"), help: "Require the dashboard's token on loopback too (it always is elsewhere).") var httpToken = false

    func validate() throws {
        if let h = http { do { _ = try HTTPAddress(parsing: h) } catch { throw ValidationError("\(error)") } }
        if httpToken && http == nil { throw ValidationError("--http-token needs --http ADDR") }
    }

    /// The coordinator's feed when a dashboard is asked for (set it as the coordinator's observer).
    func feed() -> DashboardFeed? { http == nil ? nil : DashboardFeed() }

    func start(stateDir: String, feed: DashboardFeed?) throws -> DashboardServer? {
        guard let http, let feed else { return nil }
        return try DashboardLaunch.start(stateDirs: [stateDir], feed: feed, address: http, forceToken: httpToken, onnxExporter: ONNXExport.bytes(ofModelFile:))
    }
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the dashboard of finished or running sweeps from their state dirs, read-only.",
        discussion: """
            Several --state-dir compare sweeps (one Pareto chart over all). A running coordinator's state \
            dir is followed as it changes. Stop with Ctrl-C.
            """)

    @Option(name: .customLong("state-dir"), help: "A sweep's state dir (repeat to compare several).") var stateDirs: [String] = []
    @Option(help: "HOST:PORT to serve on (a non-loopback address needs the token).") var http = "127.0.0.1:8080"
    @Flag(name: .customLong("http-token"), help: "Require the token on loopback too.") var httpToken = false
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if stateDirs.isEmpty { throw ValidationError("give --state-dir DIR (repeat it to compare sweeps)") }
        if stateDirs.count > 16 { throw ValidationError("at most 16 --state-dir") }
        do { _ = try HTTPAddress(parsing: http) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        logging.apply()
        try SweepCLI.guarded {
            _ = csupport_install_stop_handlers()
            let server = try DashboardLaunch.start(stateDirs: stateDirs.map { UserPath.absolute($0) }, feed: nil, address: http, forceToken: httpToken,
                                                   onnxExporter: ONNXExport.bytes(ofModelFile:))
            while csupport_stop_requested() == 0 { usleep(100_000) }
            server.stop()
        }
    }
}
