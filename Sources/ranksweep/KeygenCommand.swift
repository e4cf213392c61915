import ArgumentParser
import Sweep

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.pub (public, Z85) and NAME.key (secret, mode 0600).",
        discussion: """
            Coordinator: `ranksweep keygen --out keys --name coordinator`. Each worker: `ranksweep keygen --out wkeys \
            --name worker1`, then copy worker1.pub into the coordinator's keys/workers/ and keys/coordinator.pub to the worker.
            """)

    @Option(name: [.customLong("out-dir"), .customLong("out")], help: "Directory to write the key files into (created).") var out: String
    @Option(help: "Base name of the key files.") var name = "coordinator"

    func validate() throws {
        if name.isEmpty || name.contains("/") || name.hasPrefix(".") { throw ValidationError("--name must be a plain file name") }
    }

    func run() throws {
        try SweepCLI.guarded {
            let (pub, sec) = try CurveKeyPair.writeNew(directory: out, name: name)
            print("wrote \(pub) and \(sec)")
        }
    }
}
