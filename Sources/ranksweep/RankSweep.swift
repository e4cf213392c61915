import ArgumentParser

/// The command-line tool. Each subcommand lives in its own file and only parses, validates and
/// calls into the modules (Pipeline, Sweep, Reports).
struct RankSweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranksweep",
        abstract: "Train a U-Net, compress it by low-rank factorisation, and sweep ranks across hosts.",
        subcommands: [
            Version.self,
            RunCommand.self,
            Train.self,
            Compress.self,
            Evaluate.self,
            Dataset.self,
            ImportKeras.self,
            Export.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            StatusCommand.self,
            ReportCommand.self,
            KeygenCommand.self,
            BenchCommand.self,
            ExecJobCommand.self,
        ]
    )
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print(ranksweepVersion) }
}

let ranksweepVersion = "0.1.0"
