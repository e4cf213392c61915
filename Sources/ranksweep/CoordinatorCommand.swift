import ArgumentParser
import Basics
import Sweep
import SweepJobs

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run a sweep: hand its jobs to workers over ZeroMQ, keep its state in --state-dir.",
        discussion: """
            Restarting on the same --state-dir resumes the sweep: finished results are kept, running jobs \
            are queued again, and workers reattach by themselves. Off loopback, CURVE keys are required \
            (--keys DIR with coordinator.key and workers/*.pub; see `ranksweep keygen`) unless --insecure.
            """)

    @Option(help: "Sweep file (YAML). Optional when resuming a state dir.") var sweep: String?
    @Option(help: "ZeroMQ endpoint to bind (default tcp://0.0.0.0:5555 with --keys or --insecure, else tcp://127.0.0.1:5555: plain TCP stays on loopback).")
    var bind: String?
    @Option(name: .customLong("state-dir"), help: "Directory for sweep.sqlite and artifacts (reuse it to resume).") var stateDir: String
    @Option(help: "Key directory: coordinator.key (secret) and workers/*.pub (allowed worker keys).") var keys: String?
    @Option(help: "Allowed worker keys: a directory of *.pub files or a file with one key per line (default KEYS/workers).") var allow: String?
    @Flag(help: "Allow plain TCP on a non-loopback address (no encryption, no authentication).") var insecure = false
    @OptionGroup var coordinator: CoordinatorRunOptions

    func validate() throws {
        if allow != nil && keys == nil { throw ValidationError("--allow needs --keys (the coordinator's own key pair)") }
    }

    func run() throws {
        coordinator.logging.apply()
        try SweepCLI.guarded {
            let endpoint = bind ?? (keys != nil || insecure ? "tcp://0.0.0.0:5555" : "tcp://127.0.0.1:5555")
            var o = CoordinatorOptions(bind: endpoint, stateDir: UserPath.absolute(stateDir))
            if let sweep {
                var spec = try SweepSpec.load(path: sweep)
                // Checked before the state dir exists: bad input leaves nothing behind.
                try SweepPreflight.check(&spec)
                o.sweep = spec
                o.sweepSource = sweep
            }
            if let keys {
                o.serverKeys = try CurveKeyPair(secretKey: try CurveKeyPair.readKey(keys + "/coordinator.key", what: "coordinator secret key"))
                o.allowlist = try Allowlist.load(allow ?? keys + "/workers")
            }
            o.insecure = insecure
            o.jobTimeout = coordinator.jobTimeout
            try coordinator.serve(o)
        }
    }
}
