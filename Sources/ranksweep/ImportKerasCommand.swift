import ArgumentParser
import Basics
import ModelInterop

/// `ranksweep import-keras`: a Keras U-Net as a ranksweep model file.
struct ImportKeras: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-keras",
        abstract: "Convert a Keras U-Net (.keras, legacy .h5 or .weights.h5) into a ranksweep model (safetensors).",
        discussion: """
        The model must have the reference architecture (see the README, "Keras models in"); layers are \
        matched by the reference names or, for Keras's automatic names, by order and shape. Depth, base \
        filters and input channels are read off the weights. compress, evaluate and sweeps also take \
        Keras files directly; importing once saves reading HDF5 each time.
        """)

    @Argument(help: "Keras model file.") var file: String
    @Option(name: [.customLong("out")], help: "Output model file (safetensors).") var out: String

    func run() throws {
        let file = UserPath.absolute(file), out = UserPath.absolute(out)
        let model = try ModelFile.importKeras(path: file, to: out)
        let c = model.config
        print("\(file): U-Net depth \(c.depth), base filters \(c.baseFilters), \(c.inputChannels) input channel\(c.inputChannels == 1 ? "" : "s"), \(model.parameterCount) parameters -> \(out)")
    }
}
