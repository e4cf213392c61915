import ArgumentParser
import Sweep

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a sweep's state: jobs by state, workers, attempts, ETA.",
        discussion: """
            From the state dir (--state-dir, read-only SQLite) or from the running coordinator itself \
            (--connect, a STATUS request over ZeroMQ answered from its memory). With CURVE, --connect needs a \
            key pair whose public key is in the coordinator's allowlist (--key) and the coordinator's public \
            key (--server-key); a status client is never registered as a worker and gets no jobs.
            """)

    @Option(name: .customLong("state-dir"), help: "The coordinator's state directory.") var stateDir: String?
    @Option(help: "A running coordinator's endpoint, e.g. tcp://HOST:5555.") var connect: String?
    @Option(help: "With --connect over CURVE: our secret key file (its public key must be in the coordinator's allowlist).") var key: String?
    @Option(name: .customLong("server-key"), help: "With --connect over CURVE: the coordinator's public key file.") var serverKey: String?
    @Option(help: "With --connect: seconds to wait for an answer.") var timeout: Double = Double(Wire.defaultStatusTimeoutMs) / 1000
    @Flag(help: "Print the status as one JSON object (the same content; for scripts).") var json = false

    func validate() throws {
        if (stateDir == nil) == (connect == nil) { throw ValidationError("give --state-dir DIR or --connect ENDPOINT (one of them)") }
        if (key == nil) != (serverKey == nil) { throw ValidationError("CURVE needs both --key and --server-key") }
        if key != nil && connect == nil { throw ValidationError("--key and --server-key go with --connect") }
        if !(timeout > 0 && timeout <= 600) { throw ValidationError("--timeout must be in (0, 600] seconds") }
    }

    func run() throws {
        try SweepCLI.guarded {
            if let stateDir {
                let store = try SweepStore(stateDir: stateDir, readOnly: true)
                let status = try SweepStatus.load(store: store)
                print(try json ? status.json(source: stateDir) : status.render(source: "in \(stateDir)"))
            } else if let connect {
                var keys: CurveKeyPair?, server: String?
                if let key, let serverKey {
                    keys = try CurveKeyPair(secretKey: try CurveKeyPair.readKey(key, what: "secret key"))
                    server = try CurveKeyPair.readKey(serverKey, what: "coordinator public key")
                }
                let status = try StatusClient.fetch(endpoint: connect, keys: keys, serverKey: server, timeoutMs: Int(timeout * 1000))
                print(try json ? status.json(source: connect) : status.render(source: "at \(connect)"))
            }
        }
    }
}
