import Foundation
import XCTest

/// Every command's help screen against its snapshot in Snapshots/help-COMMAND.txt, exactly, at a
/// fixed width (COLUMNS=100), so a changed flag or text shows in review. A command listed by
/// `ranksweep --help` (or by a command group's help) without a snapshot fails until one is written.
/// `RANKSWEEP_UPDATE_SNAPSHOTS=1` rewrites them from the built binary.
final class HelpSnapshotTests: XCTestCase {
    static let folder = CLITests.root.appendingPathComponent("Tests/CLITests/Snapshots").path
    static var updating: Bool { ProcessInfo.processInfo.environment["RANKSWEEP_UPDATE_SNAPSHOTS"] == "1" }

    /// `ranksweep ARGS --help` at 100 columns.
    static func help(_ command: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.binary)
        process.arguments = command + ["--help"]
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = "100"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "ranksweep \(command.joined(separator: " ")) --help")
        return String(decoding: data, as: UTF8.self)
    }

    /// The names under SUBCOMMANDS: in a help screen.
    static func subcommands(in help: String) -> [String] {
        var names: [String] = []
        var inside = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SUBCOMMANDS:") { inside = true; continue }
            guard inside else { continue }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { if !names.isEmpty { break } else { continue } }
            // A name is indented two spaces; a wrapped abstract is indented further.
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { continue }
            names.append(String(name))
        }
        return names
    }

    /// Every command path reachable from the top-level help, the top level (empty) first.
    static func allCommands() throws -> [[String]] {
        var out: [[String]] = []
        var queue: [[String]] = [[]]
        while !queue.isEmpty {
            let command = queue.removeFirst()
            out.append(command)
            queue += subcommands(in: try help(command)).filter { $0 != "help" }.map { command + [$0] }
        }
        return out
    }

    static func snapshotPath(_ command: [String]) -> String {
        folder + "/help-" + (command.isEmpty ? "ranksweep" : command.joined(separator: "-")) + ".txt"
    }

    func testEveryCommandsHelpMatchesItsSnapshot() throws {
        let commands = try HelpSnapshotTests.allCommands()
        XCTAssertGreaterThan(commands.count, 15, "the subcommands were found: \(commands)")
        if HelpSnapshotTests.updating { try FileManager.default.createDirectory(atPath: HelpSnapshotTests.folder, withIntermediateDirectories: true) }
        for command in commands {
            let text = try HelpSnapshotTests.help(command)
            let path = HelpSnapshotTests.snapshotPath(command)
            if HelpSnapshotTests.updating {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                continue
            }
            guard let snapshot = try? String(contentsOfFile: path, encoding: .utf8) else {
                XCTFail("no help snapshot for `ranksweep \(command.joined(separator: " "))` at \(path): write it with RANKSWEEP_UPDATE_SNAPSHOTS=1")
                continue
            }
            XCTAssertEqual(text, snapshot, "`ranksweep \(command.joined(separator: " ")) --help` differs from \(path) (RANKSWEEP_UPDATE_SNAPSHOTS=1 rewrites it)")
        }
        // No snapshot of a command that is gone.
        let expected = Set(commands.map { (HelpSnapshotTests.snapshotPath($0) as NSString).lastPathComponent })
        let stored = Set(try FileManager.default.contentsOfDirectory(atPath: HelpSnapshotTests.folder).filter { $0.hasPrefix("help-") })
        XCTAssertEqual(stored.subtracting(expected), [], "snapshots of commands the binary no longer lists")
    }

    func testSubcommandListParsing() {
        let help = """
            USAGE: ranksweep <subcommand>

            SUBCOMMANDS:
              run                     Run a whole sweep on this machine: a coordinator on loopback plus local
                                      worker processes.
              train                   Train a U-Net baseline.

              See 'ranksweep help <subcommand>' for detailed help.
            """
        XCTAssertEqual(HelpSnapshotTests.subcommands(in: help), ["run", "train"])
    }
}
