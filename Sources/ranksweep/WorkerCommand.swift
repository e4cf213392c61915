import ArgumentParser
import Basics
import CommandLineOptions
import CSupport
import Sweep

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Take jobs from a coordinator and run them (reconnects by itself; SIGTERM hands jobs back).")

    @Option(help: "Coordinator endpoint, e.g. tcp://HOST:5555.") var connect: String
    @Option(help: "BLAS threads per job (sets OPENBLAS_NUM_THREADS of job processes; default: all cores / slots).") var threads: Int?
    @Option(help: "Jobs run at once.") var slots = 1
    @Option(name: .customLong("cache-dir"), help: "Artifact cache and job work directories (default ~/.cache/ranksweep).") var cacheDir: String?
    @Option(help: "This worker's CURVE secret key file (from `ranksweep keygen`).") var key: String?
    @Option(name: .customLong("server-key"), help: "The coordinator's CURVE public key file.") var serverKey: String?
    @Option(help: "Worker id prefix (default: host name).") var name: String?
    @Flag(help: "Keep running after the coordinator reports the sweep complete.") var stay = false
    @Option(name: .customLong("give-up-after"), help: "Exit (status 3) after this many seconds without a word from a coordinator; 0: keep trying.")
    var giveUpAfter: Double = 600

    // Failure injection for tests (--fault, repeatable, hidden from help): stall-after-jobs=N (freeze
    // forever after N jobs), crash-mid-job (exit abruptly 0.3 s into the first job), freeze-on-job=S
    // (socket loop frozen S seconds on the first job: its result arrives late), duplicate-done (send
    // every DONE twice).
    @Option(help: .hidden) var fault: [String] = []
    @OptionGroup var timingOptions: TimingOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if slots < 1 || slots > 1024 { throw ValidationError("--slots must be in 1...1024") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if (key == nil) != (serverKey == nil) { throw ValidationError("CURVE needs both --key and --server-key") }
        if !["tcp://", "ipc://", "inproc://"].contains(where: connect.hasPrefix) {
            throw ValidationError("--connect \(connect) is not a ZeroMQ endpoint: give tcp://HOST:PORT, e.g. tcp://\(connect.contains(":") ? connect : connect + ":5555")")
        }
        if !(giveUpAfter >= 0 && giveUpAfter.isFinite) { throw ValidationError("--give-up-after must be 0 or a positive number of seconds") }
    }

    func run() throws {
        logging.apply()
        try SweepCLI.guarded {
            var o = WorkerOptions(connect: connect, threads: threads ?? max(1, SweepCLI.cores / slots), slots: slots,
                                  cacheDir: UserPath.absolute(cacheDir ?? WorkerOptions.defaultCacheDir), executable: SweepCLI.executable)
            if let key, let serverKey {
                o.keys = try CurveKeyPair(secretKey: try CurveKeyPair.readKey(key, what: "worker secret key"))
                o.serverKey = try CurveKeyPair.readKey(serverKey, what: "coordinator public key")
            }
            for f in fault { try o.faults.add(f) }
            o.timing = timingOptions.timing
            o.stayAfterSweep = stay
            o.giveUpAfter = giveUpAfter > 0 && !stay ? giveUpAfter : nil   // --stay: a standing pool waits for the next sweep
            o.name = name
            _ = csupport_install_stop_handlers()
            let w = try Worker(options: o)
            let code = try w.run()
            if code != 0 { throw ExitCode(code) }
            try exitIfInterrupted()   // stopped by a signal, after handing back: 130 / 143
        }
    }
}
