import ArgumentParser
import Foundation
import Sweep
import SweepJobs

/// Runs one job in this process (the worker's child). Hidden: workers call it, people do not.
struct ExecJobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-job", abstract: "Run one job (used by workers).", shouldDisplay: false)

    /// The job kinds a child process runs: Sweep's built-in test kinds (`fail`, `crash`, `sleep`, …)
    /// and the pipeline's (train, compress, sensitivity, allocate: SweepJobs' `PipelineExecutors`).
    static var executors: [String: ExecJobExecutor] { ExecJob.builtinExecutors.merging(PipelineExecutors.all) { _, new in new } }

    @Option var kind: String
    @Option var spec: String
    @Option var inputs: String
    @Option var out: String
    /// Where train and fine-tune jobs write their checkpoints (the worker uploads them).
    @Option var checkpoints: String?

    /// One line `Error: ...` on stderr (the worker reports the last line as the reason); exit 65
    /// for an input error, which the worker reports as permanent, else 1.
    func run() throws {
        do {
            guard let data = FileManager.default.contents(atPath: spec) else { throw SweepError.invalid("spec file \(spec) cannot be read") }
            try ExecJob.run(ExecJobContext(kind: kind, spec: data, inputsDir: inputs, outDir: out, checkpointDir: checkpoints), executors: ExecJobCommand.executors)
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(error is JobInputError ? ExecJob.inputErrorStatus : 1)
        }
    }
}
