import ArgumentParser
import CSupport
import Sweep

/// The command-line tool. Each subcommand lives in its own file and only parses, validates and
/// calls into the modules (Pipeline, Sweep, Reports).
struct RankSweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranksweep",
        abstract: "Train a U-Net, compress it by low-rank factorisation, and sweep ranks across hosts.",
        discussion: """
        Every flag also takes the seed pipeline's snake_case spelling (--data_root, --out_dir, ...). \
        Exit status: 0 success; 1 runtime error (a bad file, a failed job run by hand); 2 a sweep that \
        finished with failed jobs; 64 a usage error (bad flag or value); 130 / 143 interrupted by \
        SIGINT (Ctrl-C) / SIGTERM, after saving what was done.
        """,
        version: ranksweepVersion,
        subcommands: [
            Version.self,
            RunCommand.self,
            Train.self,
            Compress.self,
            ProfileLayers.self,
            Evaluate.self,
            Dataset.self,
            ImportKeras.self,
            Export.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            StatusCommand.self,
            RetryCommand.self,
            ReportCommand.self,
            ServeCommand.self,
            KeygenCommand.self,
            BenchCommand.self,
            ExecJobCommand.self,
        ]
    )
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version (same as --version).")
    @Flag(help: "Print the sweep wire protocol version instead (coordinator and workers must speak the same one).")
    var `protocol` = false
    func run() { print(`protocol` ? String(Wire.version) : ranksweepVersion) }
}

let ranksweepVersion = "0.2.0"

/// What a command that was interrupted returns, after saving: 128 + the signal (130 for SIGINT,
/// 143 for SIGTERM), so `train && compress` stops after a preemption.
func exitIfInterrupted() throws {
    let signal = Int32(csupport_stop_requested())
    if signal != 0 { throw ExitCode(128 + signal) }
}
