import ArgumentParser
import Reports

/// `ranksweep report`: the comparison report of a sweep's state dir (finished or not).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a sweep's comparison report (CSV, JSON, Markdown, HTML with charts, PNG overlays) from its state dir.",
        discussion: """
        Reads the state dir read-only, so it can run while the sweep is still going; unfinished and failed jobs are shown as such. \
        The recommended and Pareto-front models (and their baselines) are put in REPORT/models/JOB.safetensors \
        (--all-models: every finished job's); results.csv and results.json name each job's model.
        """)

    @Option(name: .customLong("state-dir"), help: "The sweep's state directory (holds sweep.sqlite).") var stateDir: String
    @Option(name: [.customLong("out-dir"), .customLong("out")], help: "Report folder (default: STATE_DIR/report); replaced atomically.")
    var out: String?
    @Option(name: .customLong("data-root"), help: "Dataset folder for the overlays of a folder-data sweep (default: unpacked from the state dir).")
    var dataRoot: String?
    @Option(name: .customLong("overlay-images"), help: "Test images to draw overlays for (0: none).") var overlayImages: Int = 3
    @Flag(name: .customLong("all-models"), help: "Put every finished job's model in REPORT/models/, not only the recommended and Pareto-front ones.")
    var allModels = false

    func validate() throws {
        if overlayImages < 0 || overlayImages > 100 { throw ValidationError("--overlay-images must be in 0...100") }
    }

    func run() throws {
        try SweepCLI.guarded {
            let writer = ReportWriter(stateDir: stateDir, outDir: out,
                                      overlays: OverlayRenderer(imageCount: overlayImages, dataRoot: dataRoot),
                                      models: allModels ? .all : .chosen)
            let summary = try writer.write()
            for note in summary.notes { print("note: \(note)") }
            print("report written to \(summary.outDir) (sweep \(summary.statusLine); \(summary.overlays) overlays; \(summary.models.count) model(s) in \(summary.outDir)/\(ReportModels.folder))")
        }
    }
}
