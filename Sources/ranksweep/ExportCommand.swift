import ArgumentParser
import Basics
import Engine
import Foundation
import ModelInterop

/// `ranksweep export`: a model (baseline, compressed, or a Keras file) as ONNX.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a model (baseline or compressed) as ONNX, opset 17.",
        discussion: """
        Input 'image' is NHWC (batch, height, width, channels) followed by a Transpose to NCHW; output \
        'probabilities' is NHWC (batch, height, width, 1). A factorised layer becomes two Conv nodes; \
        BatchNormalization nodes are kept; tensors keep their ranksweep names.
        """)

    @Argument(help: "Model file: ranksweep safetensors, or a Keras .keras/.h5/.weights.h5.") var model: String
    @Option(help: "Output ONNX file.") var onnx: String
    /// For `make interop`: a seeded random batch `x` and ranksweep's output `y` on it, as safetensors.
    @Option(name: [.customLong("sample-out"), .customLong("sample_out")], help: .hidden) var sampleOut: String?
    @Option(name: [.customLong("sample-size"), .customLong("sample_size")], help: .hidden) var sampleSize = 32

    func validate() throws {
        guard sampleSize >= 1 else { throw ValidationError("--sample-size must be positive") }
    }

    func run() throws {
        let model = UserPath.absolute(model), onnx = UserPath.absolute(onnx), sampleOut = sampleOut.map { UserPath.absolute($0) }
        let (net, metadata) = try ModelFile.load(path: model)
        let written = try ONNXExport.write(net, metadata: metadata, to: onnx)
        print("\(onnx): opset \(ONNXExport.opset), \(written.nodes) nodes, \(written.initializers) initializers holding \(written.initializerElements) parameters (the model has \(net.parameterCount)), \(written.bytes) bytes")
        if let sampleOut {
            let multiple = 1 << net.config.depth
            guard sampleSize % multiple == 0 else { throw ValidationError("--sample-size must be a multiple of \(multiple)") }
            var rng = SeededGenerator(seed: 14)
            var x = Tensor.zeros([2, sampleSize, sampleSize, net.config.inputChannels])
            for i in 0..<x.count { x.storage[i] = rng.uniform(0, 1) }
            try SafeTensors.write(["x": x, "y": net.forward(x, training: false)], to: sampleOut)
            print("\(sampleOut): input x \(x.shape) and ranksweep's output y")
        }
    }
}
