import ArgumentParser
import Basics
import CommandLineOptions
import Sweep

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Requeue failed jobs (with a fresh attempt budget) and the jobs that failed because of them.",
        discussion: """
            Works on a stopped sweep's state dir; `run` or `coordinator` on it then runs them. While a \
            coordinator runs on the state dir, retry refuses (naming its pid): stop it, retry, start it again.
            """)

    @Option(name: .customLong("state-dir"), help: "The sweep's state directory.") var stateDir: String
    @Flag(help: "Every failed job.") var failed = false
    @Option(name: .customLong("job"), parsing: .upToNextOption, help: "Failed job ids to retry (one or more).") var jobs: [String] = []
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if !failed && jobs.isEmpty { throw ValidationError("give --failed or --job ID… (which jobs to retry)") }
    }

    func run() throws {
        logging.apply()
        try SweepCLI.guarded {
            let dir = UserPath.absolute(stateDir)
            let requeued = try Retry.run(stateDir: dir, allFailed: failed, ids: jobs)
            if requeued.isEmpty {
                print("no failed jobs in \(dir)")
            } else {
                print("requeued \(requeued.count) job(s) with a fresh attempt budget: \(requeued.joined(separator: ", "))")
                print("run them with `ranksweep run --state-dir \(Shell.quote(dir))` (local workers), or `ranksweep coordinator --state-dir \(Shell.quote(dir))` for workers that connect to tcp://127.0.0.1:5555 (add --bind and --keys for other hosts)")
            }
        }
    }
}
