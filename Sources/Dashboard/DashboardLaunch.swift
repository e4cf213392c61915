import Foundation
import Sweep

/// Starting a dashboard the way every command does: the token decision, the server, one line
/// saying where it is (with the token the one time it is created).
public enum DashboardLaunch {
    /// `forceToken`: ask for the token on loopback too (a shared machine). The token lives in
    /// the first state dir. Returns the running server; stop it when the command ends.
    public static func start(stateDirs: [String], feed: DashboardFeed?, address: String, forceToken: Bool,
                             onnxExporter: ONNXExports.Exporter? = nil) throws -> DashboardServer {
        let addr = try HTTPAddress(parsing: address)
        var access = DashboardAccess(token: nil)
        var created = false
        if forceToken || !addr.isLoopback { (access, created) = try DashboardAccess.load(stateDir: stateDirs[0]) }
        let server = try DashboardServer(stateDirs: stateDirs, feed: feed, address: addr, access: access, onnxExporter: onnxExporter)
        let url = try server.start()
        let tokenFile = stateDirs[0] + "/" + DashboardAccess.fileName
        if let token = access.token {
            if created {
                print("dashboard at \(url)?token=\(token) (token shown once; kept in \(tokenFile))")
            } else {
                print("dashboard at \(url) (token required: \(tokenFile))")
            }
        } else {
            print("dashboard at \(url)")
        }
        return server
    }
}
